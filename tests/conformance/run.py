#!/usr/bin/python3
"""potc conformance runner over the ONNX backend test data (libonnx-testdata).

Usage:
  /usr/bin/python3 tests/conformance/run.py --potc PATH/TO/potc [--cc cc]
      [--jobs N] [--filter REGEX] [--list-skips] [--keep DIR]
      [--rtol 1e-4] [--atol 1e-5] [--timeout 60]

For each test directory (model.onnx + test_data_set_*/{input_N,output_N}.pb)
under DATA/{node,pytorch-converted,pytorch-operator,simple}:
  1. skip it when its layout is unusable, when a graph input/output is not a
     float32 tensor, or when `potc info MODEL` reports unsupported ops;
  2. otherwise `potc MODEL -o model.c --driver main.c`, cc it, run it on every
     data set and compare each output with output_N.pb:
     |got - exp| <= atol + rtol*|exp| elementwise, NaN matches NaN.
The last line printed is always `N passed, N failed, N skipped`; the exit code
is 1 if anything failed, else 0.

Needs only Debian's python3 with numpy and python3-onnx.
"""

import argparse
import collections
import concurrent.futures
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import onnx
    from onnx import numpy_helper
except ImportError:  # pragma: no cover
    sys.stderr.write('run.py: needs the onnx python module (apt-get install python3-onnx); '
                     'run with /usr/bin/python3\n')
    sys.exit(2)

DEFAULT_DATA = '/usr/share/libonnx-testdata/data'
DEFAULT_SUITES = 'node,pytorch-converted,pytorch-operator,simple'
DEFAULT_CFLAGS = '-O1 -std=c99 -Wall -Wextra -Werror'

PASS, FAIL, SKIP = 'pass', 'fail', 'skip'


class Result:
    def __init__(self, name, status, reason=''):
        self.name = name
        self.status = status
        self.reason = reason


class Timeout(Exception):
    pass


ANSI_RE = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')
ERROR_RE = r'(?i)error|fatal|abort|assert|fail|panic|undefined|cannot|unsupported'


def first_line(text, prefer=ERROR_RE):
    """First non-empty line of text, preferring the first line that matches prefer."""
    lines = [ANSI_RE.sub('', ln).strip() for ln in (text or '').splitlines()]
    lines = [ln for ln in lines if ln]
    if prefer:
        for ln in lines:
            if re.search(prefer, ln):
                return ln
    return lines[0] if lines else ''


def run_cmd(argv, deadline, cwd=None):
    """Run argv with a deadline (time.monotonic()); kill its whole process group on timeout.

    Returns (returncode, stdout, stderr) as text; raises Timeout."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Timeout()
    try:
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        return 127, '', '%s: %s' % (argv[0], e.strerror or e)
    try:
        out, err = p.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.communicate()
        raise Timeout()
    return (p.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace'))


def exit_reason(stage, rc, out, err):
    line = first_line(err) or first_line(out)
    return '%s: %s%s' % (stage, describe_exit(rc), ': ' + line if line else '')


def describe_exit(rc):
    if rc < 0:
        try:
            return 'killed by %s' % signal.Signals(-rc).name
        except ValueError:
            return 'killed by signal %d' % -rc
    return 'exit %d' % rc


# ------------------------------------------------------------------ model facts

def value_kind(vi):
    """'float32' / other elem type name / 'sequence' / 'optional' / ... for a ValueInfoProto."""
    kind = vi.type.WhichOneof('value')
    if kind != 'tensor_type':
        return {'sequence_type': 'sequence', 'optional_type': 'optional', 'map_type': 'map',
                'sparse_tensor_type': 'sparse tensor'}.get(kind, str(kind))
    et = vi.type.tensor_type.elem_type
    if et == onnx.TensorProto.FLOAT:
        return 'float32'
    try:
        return onnx.TensorProto.DataType.Name(et).lower()
    except ValueError:
        return 'elem type %d' % et


def is_static(vi):
    tt = vi.type.tensor_type
    if not tt.HasField('shape'):
        return False
    return all(d.HasField('dim_value') for d in tt.shape.dim)


def model_io(model):
    """Graph inputs (initializers excluded, as in the backend tests) and outputs."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    return inputs, list(model.graph.output)


# Element types potc claims at a model's inputs and outputs: float32 compute,
# integer and bool tensors for indices, shapes, masks and data movement.
CLAIMED_DTYPES = ('float32', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'bool')


# Tests whose expected outputs are wrong in the Debian libonnx-testdata (ONNX
# 1.12) copy: onnxruntime 1.30 and numpy (float32) both agree with potc and
# disagree with the file, e.g. hann window element 8 is 0.5 - 0.5*cos(2*pi*8/10)
# = 0.3454915, the file says 0.34556198 (an error of 7e-5, as from a pi
# rounded to about 4 digits).
KNOWN_BAD_DATA = {
    'node/test_%swindow%s_expanded' % (w, sym): 'expected data off by ~7e-5 (onnxruntime and numpy agree with potc)'
    for w in ('blackman', 'hamming', 'hann') for sym in ('', '_symmetric')
}


def io_skip_reason(inputs, outputs, any_dtype=False):
    io = [('input', vi) for vi in inputs] + [('output', vi) for vi in outputs]
    for what, vi in io:
        k = value_kind(vi)
        if k in ('sequence', 'optional', 'map', 'sparse tensor'):
            return '%s-typed %s' % (k, what)
    if any_dtype:
        return None
    for what, vi in io:
        k = value_kind(vi)
        if k not in CLAIMED_DTYPES:
            return '%s %s (potc computes in float32; integers only move or index data)' % (k, what)
    return None


def load_tensor_pb(path):
    t = onnx.TensorProto()
    with open(path, 'rb') as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def data_set_files(ds):
    """(input paths, output paths) of one test_data_set_N, in index order."""
    def indexed(prefix):
        out = {}
        for p in glob.glob(os.path.join(ds, prefix + '_*.pb')):
            m = re.match(prefix + r'_(\d+)\.pb$', os.path.basename(p))
            if m:
                out[int(m.group(1))] = p
        return [out[i] for i in sorted(out)], sorted(out)
    ins, iidx = indexed('input')
    outs, oidx = indexed('output')
    return ins, iidx, outs, oidx


# ------------------------------------------------------------------- compare

def compare(got, exp, rtol, atol):
    """None if got matches exp, else a one-line reason."""
    if got.shape != exp.shape:
        return 'shape %s, expected %s' % (tuple(got.shape), tuple(exp.shape))
    if exp.size == 0:
        return None
    if exp.dtype.kind not in 'biuf' or got.dtype.kind not in 'biuf':
        return 'cannot compare dtype %s with expected %s' % (got.dtype, exp.dtype)
    g = got.astype(np.float64)
    e = exp.astype(np.float64)
    with np.errstate(invalid='ignore', over='ignore'):
        diff = np.abs(g - e)
        ok = ((g == e) | (np.isfinite(diff) & (diff <= atol + rtol * np.abs(e)))
              | (np.isnan(g) & np.isnan(e)))
    if ok.all():
        return None
    bad = ~ok
    nbad = int(bad.sum())
    # worst element: largest finite diff among the bad ones, else the first bad one
    d = np.where(bad & np.isfinite(diff), diff, -1.0)
    flat = int(np.argmax(d)) if d.max() >= 0 else int(np.argmax(bad))
    idx = np.unravel_index(flat, exp.shape) if exp.ndim else ()
    return ('max abs err %.6g at index %s (got %.9g, expected %.9g); %d/%d elements out of tolerance'
            % (diff.flat[flat], tuple(int(i) for i in idx), g.flat[flat], e.flat[flat],
               nbad, exp.size))


# -------------------------------------------------------------------- a test

def find_tests(data_dir, suites, regex):
    tests = []
    for suite in suites:
        sdir = os.path.join(data_dir, suite)
        if not os.path.isdir(sdir):
            continue
        for t in sorted(os.listdir(sdir)):
            d = os.path.join(sdir, t)
            name = '%s/%s' % (suite, t)
            if os.path.isdir(d) and (regex is None or regex.search(name)):
                tests.append((name, d))
    return tests


def run_test(name, tdir, args, work_root):
    work = os.path.join(work_root, name.replace('/', '__'))
    try:
        r = _run_test(name, tdir, args, work)
        r.reason = r.reason.replace(work + os.sep, '')
        return r
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _run_test(name, tdir, args, work):
    deadline = time.monotonic() + args.timeout
    model_path = os.path.join(tdir, 'model.onnx')
    if name in KNOWN_BAD_DATA:
        return Result(name, SKIP, 'bad test data: ' + KNOWN_BAD_DATA[name])
    if not os.path.isfile(model_path):
        return Result(name, SKIP, 'no model.onnx')
    sets = sorted(d for d in glob.glob(os.path.join(tdir, 'test_data_set_*')) if os.path.isdir(d))
    if not sets:
        return Result(name, SKIP, 'no test_data_set')
    try:
        model = onnx.load(model_path)
    except Exception as e:  # noqa: BLE001 - any load failure is a skip reason
        return Result(name, SKIP, 'onnx cannot load model: %s' % first_line(str(e), None))
    inputs, outputs = model_io(model)
    reason = io_skip_reason(inputs, outputs, args.any_dtype)
    if reason:
        return Result(name, SKIP, reason)
    files = [data_set_files(ds) for ds in sets]
    for ds, (ins, iidx, outs, oidx) in zip(sets, files):
        base = os.path.basename(ds)
        if iidx != list(range(len(inputs))):
            return Result(name, SKIP, 'data set inputs do not match graph inputs (%s has %d, model %d)'
                          % (base, len(iidx), len(inputs)))
        if not oidx or oidx != list(range(len(oidx))) or len(oidx) > len(outputs):
            return Result(name, SKIP, 'data set outputs do not match graph outputs (%s has %d, model %d)'
                          % (base, len(oidx), len(outputs)))

    potc = args.potc
    try:
        # 1. does potc support it?  (info lists unsupported ops even when it
        # cannot compile the model, and then exits 1)
        shape_args = []
        if not all(is_static(vi) for vi in inputs):
            for vi, p in zip(inputs, files[0][0]):
                shp = load_tensor_pb(p).shape
                shape_args += ['--input-shape', '%s=%s' % (vi.name, 'x'.join(str(d) for d in shp))]
        rc, out, err = run_cmd([potc, 'info', model_path] + shape_args, deadline)
        frozen = set()
        names = [vi.name for vi in inputs]

        def bind(i):
            npy = os.path.join(work, 'const_in%d.npy' % i)
            os.makedirs(work, exist_ok=True)
            np.save(npy, load_tensor_pb(files[0][0][i]))
            shape_args.extend(['--const', '%s=%s' % (names[i], npy)])
            frozen.add(i)

        # Inputs that decide a shape or a sampling grid (Reshape's shape,
        # Slice's starts, Resize's scales, OneHot's depth): bind them to the
        # test's data with --const, as a user deploying such a model would.
        for _ in range(len(inputs)):
            m = re.search(r"input '([^']+)' is not a constant", err) if rc != 0 else None
            if not m or len(sets) != 1:
                break
            if m.group(1) in names and names.index(m.group(1)) not in frozen:
                bind(names.index(m.group(1)))
            else:  # reached through other nodes: bind every integer input
                ints = [i for i in range(len(inputs)) if i not in frozen
                        and load_tensor_pb(files[0][0][i]).dtype.kind in 'iu']
                if not ints:
                    break
                for i in ints:
                    bind(i)
            rc, out, err = run_cmd([potc, 'info', model_path] + shape_args, deadline)
        unsup = None
        for ln in out.splitlines():
            m = re.match(r'\s*unsupported:\s*(.*)$', ln)
            if m:
                unsup = m.group(1).split()
                break
        if unsup and unsup != ['none']:
            return Result(name, SKIP, 'unsupported op%s: %s' % ('s' if len(unsup) > 1 else '',
                                                                ' '.join(sorted(set(unsup)))))
        if rc != 0 and ('training mode is not supported' in err or "'training_mode' = 1" in err):
            return Result(name, SKIP, 'training mode (potc compiles inference)')
        if rc != 0 and re.search(r"input '[^']+' is not a constant", err):
            # A shape computed from run-time values: outside what an AOT
            # compiler with static memory plans can do, by design.
            return Result(name, SKIP, 'data-dependent output shape')
        if rc != 0:
            return Result(name, FAIL, exit_reason('potc info', rc, out, err))
        if unsup is None:
            return Result(name, FAIL, "potc info: no 'unsupported:' line in its output")

        # 2. compile
        for f in glob.glob(os.path.join(work, '*')):
            if not os.path.basename(f).startswith('const_in'):
                os.unlink(f) if os.path.isfile(f) else shutil.rmtree(f, ignore_errors=True)
        os.makedirs(work, exist_ok=True)
        model_c = os.path.join(work, 'model.c')
        main_c = os.path.join(work, 'main.c')
        prog = os.path.join(work, 'prog')
        rc, out, err = run_cmd([potc, model_path, '-o', model_c, '--driver', main_c] + shape_args,
                               deadline, cwd=work)
        if rc != 0:
            return Result(name, FAIL, exit_reason('potc', rc, out, err))
        rc, out, err = run_cmd(shlex.split(args.cc) + shlex.split(args.cflags)
                               + [model_c, main_c, '-o', prog, '-lm'], deadline, cwd=work)
        if rc != 0:
            return Result(name, FAIL, exit_reason('cc', rc, out, err))

        # 3. run every data set
        for ds, (ins, _, outs, _) in zip(sets, files):
            base = os.path.basename(ds)
            tag = '' if len(sets) == 1 else base + ': '
            argv = [prog]
            for i, p in enumerate(ins):
                if i in frozen:
                    continue
                npy = os.path.join(work, '%s_in%d.npy' % (base, i))
                np.save(npy, load_tensor_pb(p))
                argv.append(npy)
            got_paths = []
            for i in range(len(outs)):
                npy = os.path.join(work, '%s_out%d.npy' % (base, i))
                if os.path.exists(npy):
                    os.unlink(npy)
                got_paths.append(npy)
                argv += ['-o', npy]
            rc, out, err = run_cmd(argv, deadline, cwd=work)
            if rc != 0:
                return Result(name, FAIL, tag + exit_reason('run', rc, out, err))
            for i, (gp, ep) in enumerate(zip(got_paths, outs)):
                if not os.path.exists(gp):
                    return Result(name, FAIL, '%soutput %d: not written' % (tag, i))
                try:
                    got = np.load(gp, allow_pickle=False)
                except Exception as e:  # noqa: BLE001
                    return Result(name, FAIL, '%soutput %d: cannot read .npy: %s' % (tag, i, first_line(str(e), None)))
                exp = load_tensor_pb(ep)
                if got.dtype != np.float32 and (exp.dtype == np.float32 or got.dtype.kind not in 'biuf'):
                    return Result(name, FAIL, '%soutput %d: dtype %s, expected float32' % (tag, i, got.dtype))
                why = compare(got, exp, args.rtol, args.atol)
                if why:
                    return Result(name, FAIL, '%soutput %d: %s' % (tag, i, why))
        return Result(name, PASS)
    except Timeout:
        return Result(name, FAIL, 'timeout (%gs)' % args.timeout)


# ---------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description='Run the ONNX backend test data through potc.')
    ap.add_argument('--potc', required=True, help='path to the potc binary')
    ap.add_argument('--cc', default=os.environ.get('CC', 'cc'), help='C compiler (default $CC or cc)')
    ap.add_argument('--cflags', default=DEFAULT_CFLAGS, help='C flags (default %(default)r)')
    ap.add_argument('--jobs', '-j', type=int, default=os.cpu_count() or 1,
                    help='parallel tests (default: number of CPUs)')
    ap.add_argument('--filter', help='only tests whose SUITE/NAME matches this regex (re.search)')
    ap.add_argument('--list-skips', action='store_true', help='list skipped tests grouped by reason')
    ap.add_argument('--keep', metavar='DIR', help='keep each test\'s build in DIR/SUITE__NAME')
    ap.add_argument('--rtol', type=float, default=1e-4)
    ap.add_argument('--atol', type=float, default=1e-5)
    ap.add_argument('--timeout', type=float, default=60.0, help='seconds per test (default 60)')
    ap.add_argument('--any-dtype', action='store_true',
                    help='do not skip models whose inputs/outputs have element types potc does not claim (float16, double, string, ...)')
    ap.add_argument('--data', default=DEFAULT_DATA, help='test data root (default %(default)s)')
    ap.add_argument('--suites', default=DEFAULT_SUITES, help='comma-separated (default %(default)s)')
    args = ap.parse_args(argv)

    potc = args.potc
    if os.sep in potc:
        potc = os.path.abspath(potc)
    elif shutil.which(potc):
        potc = shutil.which(potc)
    if not (os.path.isfile(potc) and os.access(potc, os.X_OK)):
        sys.stderr.write('run.py: potc not found or not executable: %s\n' % args.potc)
        print('0 passed, 1 failed, 0 skipped')
        return 1
    args.potc = potc
    try:
        regex = re.compile(args.filter) if args.filter else None
    except re.error as e:
        ap.error('bad --filter: %s' % e)

    tests = find_tests(args.data, [s for s in args.suites.split(',') if s], regex)
    if args.keep:
        work_root = os.path.abspath(args.keep)
        os.makedirs(work_root, exist_ok=True)
    else:
        work_root = tempfile.mkdtemp(prefix='potc-conf-')

    results = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            futs = [ex.submit(run_test, name, d, args, work_root) for name, d in tests]
            for (name, _), f in zip(tests, futs):
                try:
                    results.append(f.result())
                except Exception as e:  # noqa: BLE001 - a runner bug must not hide other results
                    results.append(Result(name, FAIL, 'runner error: %s: %s' % (type(e).__name__, e)))
    finally:
        if not args.keep:
            shutil.rmtree(work_root, ignore_errors=True)

    counts = collections.Counter(r.status for r in results)
    for r in results:
        if r.status == FAIL:
            print('FAIL %s: %s' % (r.name, r.reason))
    if args.list_skips:
        groups = collections.defaultdict(list)
        for r in results:
            if r.status == SKIP:
                groups[r.reason].append(r.name)
        if groups:
            print('skipped, by reason:')
        for reason, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            print('  %4d  %s' % (len(names), reason))
            for n in names:
                print('          %s' % n)
    print('tolerance: rtol=%g atol=%g; tests from %s (%s)' % (args.rtol, args.atol, args.data, args.suites))
    print('%d passed, %d failed, %d skipped' % (counts[PASS], counts[FAIL], counts[SKIP]))
    return 1 if counts[FAIL] else 0


if __name__ == '__main__':
    sys.exit(main())
