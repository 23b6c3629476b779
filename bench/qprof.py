#!/usr/bin/python3
"""Per-node time of a generated model: instruments every node call in
NAME_run of MODEL.c with clock_gettime, runs it N times on the first image
of IN.npy through the generated driver, prints the fastest time of each
node in microseconds (robust when other processes share the cores).
   bench/qprof.py MODEL.c MAIN.c IN.npy [CFLAGS...]"""
import os, re, subprocess, sys, tempfile

src, main, inp = sys.argv[1:4]
flags = sys.argv[4:] or ['-O3', '-march=native']
text = open(src).read()
m = re.search(r'\nint (\w+)_run\(([^)]*)\)\n\{\n(.*?)\n\treturn 0;\n\}', text, re.S)
body = m.group(3).split('\n')
calls = [l.strip() for l in body if re.match(r'\s*n\d+_\w+\(', l)]
out = []
k = 0
for l in body:
    if re.match(r'\s*n\d+_\w+\(', l):
        out.append('\t{ struct timespec t0_, t1_; clock_gettime(CLOCK_MONOTONIC, &t0_); %s clock_gettime(CLOCK_MONOTONIC, &t1_); { long long d_ = (t1_.tv_sec - t0_.tv_sec) * 1000000000LL + (t1_.tv_nsec - t0_.tv_nsec); if (!prof_ns[%d] || d_ < prof_ns[%d]) prof_ns[%d] = d_; } }' % (l.strip(), k, k, k))
        k += 1
    else:
        out.append(l)
new = text[:m.start(3)] + '\n'.join(out) + text[m.end(3):]
new = '#define _POSIX_C_SOURCE 200809L\n#include <time.h>\nlong long prof_ns[%d];\n' % max(k, 1) + new
d = tempfile.mkdtemp()
open(d + '/m.c', 'w').write(new)
drv = open(main).read()
drv = drv.replace('int main(', 'extern long long prof_ns[];\nint main_(') + '''
#include <stdio.h>
int main(int argc, char **argv)
{
	int r = main_(argc, argv);
	for (int i = 0; i < %d; i++)
		fprintf(stderr, "node %%d %%.3f\\n", i, prof_ns[i] / 1000.0);
	return r;
}
''' % k
open(d + '/d.c', 'w').write(drv)
subprocess.check_call(['cc', '-std=c99', *flags, '-I', os.path.dirname(os.path.abspath(src)), d + '/m.c', d + '/d.c', '-o', d + '/p', '-lm'])
n = 20000
r = subprocess.run([d + '/p', inp, '-o', d + '/o.npy', '--time', str(n)], capture_output=True, text=True)
times = [float(l.split()[2]) for l in r.stderr.splitlines() if l.startswith('node ')]
runs = 1
tot = sum(times) / runs
for c, t in zip(calls, times):
    print('%8.3f us  %5.1f%%  %s' % (t / runs, 100 * t / runs / tot if tot else 0, c.split('(')[0]))
print('%8.3f us total' % tot)
