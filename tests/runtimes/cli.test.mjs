// The command-line downloader (pkg/cli.js) as a subprocess against the fault
// server on 127.0.0.1: interrupted with Ctrl-C and resumed by the same
// command, its headers, and an exit status and message for each failure.
//   FAULT_SERVER=http://127.0.0.1:PORT node --test tests/runtimes/cli.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MiB, clearLog, configure, fileUrl, gets, sha256, unique, until } from '../fault-server/client.mjs';

const CLI = fileURLToPath(new URL('../../pkg/cli.js', import.meta.url));
const CONNECTIONS = 3;
const BLOCK = 4 * MiB;

let cwd;
before(async () => { cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'rf-cli-')); });
after(() => fs.rm(cwd, { recursive: true, force: true }));

/** Starts the command line; `exit` settles with its status and output, whatever happens. */
function cli(args) {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  proc.stdout.on('data', (d) => { out.stdout += d; });
  proc.stderr.on('data', (d) => { out.stderr += d; });
  const exit = new Promise((resolve) => proc.on('exit', (code) => resolve({ code, ...out })));
  return { proc, out, exit };
}

const run = (args) => cli(args).exit;
const exists = (file) => fs.access(path.join(cwd, file)).then(() => true, () => false);

function fileSha256(file) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path.join(cwd, file)).on('error', reject).on('data', (c) => hash.update(c))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

test('Ctrl-C keeps what was stored; the same command again fetches only the rest', { timeout: 120_000 }, async () => {
  const name = unique('cli-resume');
  const size = 40 * MiB + 999;
  await configure(name, `size=${size}&seed=51&throttle=${4 * MiB}`);
  const args = [fileUrl(name), '-o', 'out.bin', '-c', String(CONNECTIONS), '--block-size', '4M',
    '-A', 'rf-cli/1', '-e', 'http://127.0.0.1/from', '-b', 'sid=c', '-H', 'X-Trace: cli-1'];

  const first = cli(args);
  await until(async () => /^[3-9]\d% /m.test(first.out.stderr) && exists('out.bin.part.record'), 60_000,
    'the command to report 30 % and store a block');
  first.proc.kill('SIGINT');
  const interrupted = await first.exit;
  assert.equal(interrupted.code, 130, interrupted.stderr);
  assert.match(interrupted.stderr, /paused with .* stored in .*out\.bin\.part; run the same command again to continue/);
  assert.ok(!(await exists('out.bin')), 'no output file before the download completes');
  assert.ok(!(await exists('out.bin.part.lock')), 'the lock is released');
  const before = await gets(name);
  for (const q of before) {
    assert.deepEqual(q.headers, { referer: 'http://127.0.0.1/from', cookie: 'sid=c', 'user-agent': 'rf-cli/1', 'x-trace': 'cli-1' });
  }
  await clearLog(name);
  await configure(name, 'throttle=0');

  const second = await run(args);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /^resuming: .* already stored$/m);
  assert.match(second.stderr, /saved .*out\.bin/);
  assert.equal(await fileSha256('out.bin'), await sha256(name));
  for (const leftover of ['out.bin.part', 'out.bin.part.record', 'out.bin.part.lock']) {
    assert.ok(!(await exists(leftover)), `${leftover} is left behind`);
  }
  const resumed = await gets(name);
  assert.ok(resumed.length > 0 && resumed.every((q) => q.status === 206 && q.start > 0),
    `the second run asked past byte 0 only: ${JSON.stringify(resumed.map((q) => q.start))}`);
  const again = [...before, ...resumed].reduce((n, q) => n + q.sent, 0) - size;
  assert.ok(again <= CONNECTIONS * BLOCK, `${again} bytes were fetched twice, more than one block per connection`);
});

test('without -o, the name comes from the URL, the same on every run', { timeout: 60_000 }, async () => {
  const name = unique('cli-name');
  await configure(name, `size=${3 * MiB}&seed=52`);
  const done = await run([`${fileUrl(name)}?x=1#frag`, '-q']);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stderr, '', 'quiet prints nothing');
  assert.equal(await fileSha256(name), await sha256(name));
  // Run again, the finished file is not overwritten.
  const again = await run([fileUrl(name), '-q']);
  assert.equal(again.code, 5);
  assert.match(again.stderr, /already exists; remove it or choose another name with -o/);
});

test('every failure has its message and exit status', { timeout: 120_000 }, async () => {
  const name = unique('cli-failures');
  await configure(name, `size=${2 * MiB}&seed=53`);
  const url = fileUrl(name);
  const cases = [
    { args: [], code: 2, message: /the URL is missing[\s\S]*usage: resumable-fetch/ },
    { args: [url, '--bogus'], code: 2, message: /Unknown option '--bogus'/ },
    { args: [url, '-o', 'h.bin', '-H', 'no colon'], code: 2, message: /expected 'Name: value'/ },
    { args: [url, '-o', 'h.bin', '-c', 'many'], code: 2, message: /--connections "many": expected a whole number/ },
    { args: [url, '-o', 'h.bin', '-c', '99'], code: 2, message: /connections.*99.*\(INVALID_ARGUMENT\)/ },
    { args: [url, '-o', 'h.bin', '-H', 'Range: bytes=0-'], code: 2, message: /Range cannot be set/ },
    { args: [`${url}-missing`, '-o', 'm.bin'], code: 4, message: /HTTP 404.*\(HTTP_STATUS\)/ },
    { args: ['http://127.0.0.1:9/closed.bin', '-o', 'n.bin', '--retries', '0'], code: 3, message: /everything stored so far is kept: run the same command again once the connection is back \(NETWORK\)/ },
    { args: [url, '-o', 'i.bin', '--integrity', `sha256-${'A'.repeat(43)}=`], code: 6, message: /does not match the integrity option.*\(INTEGRITY_MISMATCH\)/ },
  ];
  for (const { args, code, message } of cases) {
    const done = await run(args);
    assert.equal(done.code, code, `${args.join(' ')}: ${done.stderr}`);
    assert.match(done.stderr, message, args.join(' '));
    assert.match(done.stderr, /^resumable-fetch: /m, 'the message names the command');
    assert.doesNotMatch(done.stderr, /start\(\)|store's|stallTimeoutMs|onServerChange|`/, 'no words of the JS API');
  }
  for (const leftover of ['i.bin', 'i.bin.part', 'i.bin.part.record', 'm.bin.part', 'h.bin.part']) {
    assert.ok(!(await exists(leftover)), `${leftover} is left behind`);
  }

  // Another live process holds the output: refused, nothing touched.
  await fs.writeFile(path.join(cwd, 'l.bin.part.lock'), String(process.pid));
  const locked = await run([url, '-o', 'l.bin']);
  assert.equal(locked.code, 5, locked.stderr);
  assert.match(locked.stderr, new RegExp(`another resumable-fetch \\(pid ${process.pid}\\) is downloading to .*l\\.bin`));
  // A lock left by a process that died is taken over.
  await fs.writeFile(path.join(cwd, 'l.bin.part.lock'), '2147483646');
  const taken = await run([url, '-o', 'l.bin', '-q']);
  assert.equal(taken.code, 0, taken.stderr);
  assert.equal(await fileSha256('l.bin'), await sha256(name));

  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Exit status: 0 done/);
  const version = await run(['-V']);
  const pkg = JSON.parse(await fs.readFile(new URL('../../pkg/package.json', import.meta.url), 'utf8'));
  assert.equal(version.stdout.trim(), pkg.version);
});

test('on a terminal, a bar with the amount, speed and ETA is redrawn in place', { timeout: 60_000 }, async () => {
  const name = unique('cli-tty');
  const size = 12 * MiB;
  await configure(name, `size=${size}&seed=54&throttle=${2 * MiB}`);
  // script(1) runs the command on a pseudo-terminal and copies what it draws.
  const command = [process.execPath, CLI, fileUrl(name), '-o', 'tty.bin', '-c', '3', '--block-size', '1M']
    .map((a) => `'${a}'`).join(' ');
  const proc = spawn('script', ['-qfec', command, '/dev/null'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let drawn = '';
  proc.stdout.on('data', (d) => { drawn += d; });
  const code = await new Promise((resolve) => proc.on('exit', resolve));
  assert.equal(code, 0, drawn);
  assert.equal(await fileSha256('tty.bin'), await sha256(name));
  const bars = [...drawn.matchAll(/\r *(\d+)% \[([#.]+)\] ([\d.]+ \w+) \/ 12\.0 MiB {2}[\d.]+ \w+\/s {2}ETA (\d+:\d\d|--:--)/g)];
  assert.ok(bars.length >= 3, `the bar was drawn ${bars.length} times:\n${JSON.stringify(drawn)}`);
  const percents = bars.map((b) => Number(b[1]));
  assert.deepEqual(percents, [...percents].sort((a, b) => a - b), 'the percentage only grows');
  assert.equal(percents.at(-1), 100);
  const last = bars.at(-1)[2];
  assert.ok(!last.includes('.'), `the last bar is full: ${last}`);
  assert.ok(bars.some((b) => b[2].includes('#') && b[2].includes('.')), 'a part-filled bar was drawn');
  assert.doesNotMatch(drawn, /^\d+% .*\n/m, 'no 10 % lines on a terminal');
});

/** Runs `args` until it has stored `fraction` of the file, then interrupts it with Ctrl-C. */
async function interrupted(args, output, fraction = 0.3) {
  const first = cli(args);
  const tenths = Math.round(fraction * 10);
  await until(async () => new RegExp(`^([${tenths}-9]\\d|100)% `, 'm').test(first.out.stderr)
    && exists(`${output}.part.record`), 60_000, `the command to report ${tenths}0 % and store a block`);
  first.proc.kill('SIGINT');
  const done = await first.exit;
  assert.equal(done.code, 130, done.stderr);
  return done;
}

test('a rerun after the file got shorter saves exactly the new file, no old bytes past its end', { timeout: 120_000 }, async () => {
  const name = unique('cli-shorter');
  await configure(name, `size=${24 * MiB}&seed=55&throttle=${4 * MiB}`);
  const args = [fileUrl(name), '-o', 'short.bin', '-c', '3', '--block-size', '4M'];
  await interrupted(args, 'short.bin');
  const stored = (await fs.stat(path.join(cwd, 'short.bin.part'))).size;
  const size = 5 * MiB + 7;
  assert.ok(stored > size, `${stored} bytes were stored, more than the new file`);
  await configure(name, `size=${size}&seed=56&throttle=0`);
  const done = await run(args);
  assert.equal(done.code, 0, done.stderr);
  assert.equal((await fs.stat(path.join(cwd, 'short.bin'))).size, size);
  assert.equal(await fileSha256('short.bin'), await sha256(name));

  // A leftover .part longer than the file, with no record beside it.
  await fs.writeFile(path.join(cwd, 'left.bin.part'), new Uint8Array(9 * MiB).fill(0xee));
  const left = await run([fileUrl(name), '-o', 'left.bin', '-q']);
  assert.equal(left.code, 0, left.stderr);
  assert.equal((await fs.stat(path.join(cwd, 'left.bin'))).size, size);
  assert.equal(await fileSha256('left.bin'), await sha256(name));
});

test('a new URL for the same -o (a refreshed signed URL) continues from the stored bytes', { timeout: 120_000 }, async () => {
  const name = unique('cli-new-url');
  const size = 24 * MiB + 5;
  await configure(name, `size=${size}&seed=57&throttle=${4 * MiB}`);
  const options = ['-o', 'moved.bin', '-c', '3', '--block-size', '4M'];
  await interrupted([`${fileUrl(name)}?sig=1`, ...options], 'moved.bin');
  await clearLog(name);
  await configure(name, 'throttle=0');
  const done = await run([`${fileUrl(name)}?sig=2`, ...options]);
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, /^resuming: .* already stored$/m);
  assert.doesNotMatch(done.stderr, /damaged|another id/);
  const fetched = (await gets(name)).reduce((n, q) => n + q.sent, 0);
  assert.ok(fetched < size - 4 * MiB, `the second run fetched ${fetched} of ${size} bytes`);
  assert.equal(await fileSha256('moved.bin'), await sha256(name));

  // --id names the download instead: another -o with the same --id finds nothing stored under it.
  const byId = await run([fileUrl(name), '-o', 'by-id.bin', '--id', 'my-download', '-q']);
  assert.equal(byId.code, 0, byId.stderr);
  assert.equal(await fileSha256('by-id.bin'), await sha256(name));
});

test('a crash between the rename and the record\'s removal: the next run finds the file saved', { timeout: 60_000 }, async () => {
  const name = unique('cli-renamed');
  await configure(name, `size=${MiB}&seed=58`);
  const first = await run([fileUrl(name), '-o', 'renamed.bin', '-q']);
  assert.equal(first.code, 0, first.stderr);
  // What such a crash leaves: the output, no .part, and a record beside where it was.
  await fs.writeFile(path.join(cwd, 'renamed.bin.part.record'), new Uint8Array([1, 2, 3]));
  await clearLog(name);
  const done = await run([fileUrl(name), '-o', 'renamed.bin']);
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, /renamed\.bin is already saved/);
  assert.ok(!(await exists('renamed.bin.part.record')), 'the orphan record is removed');
  assert.equal(await fileSha256('renamed.bin'), await sha256(name));
  assert.deepEqual(await gets(name), [], 'nothing was fetched again');
  const again = await run([fileUrl(name), '-o', 'renamed.bin']);
  assert.equal(again.code, 5, again.stderr);
  assert.match(again.stderr, /already exists/);
});

test('a symbolic link planted at FILE.part is not written through', { timeout: 60_000 }, async () => {
  const name = unique('cli-symlink');
  await configure(name, `size=${MiB + 3}&seed=59`);
  await fs.writeFile(path.join(cwd, 'victim.txt'), 'keep');
  await fs.symlink(path.join(cwd, 'victim.txt'), path.join(cwd, 'sym.bin.part'));
  const done = await run([fileUrl(name), '-o', 'sym.bin', '-q']);
  assert.equal(await fs.readFile(path.join(cwd, 'victim.txt'), 'utf8'), 'keep', `written through the link: ${done.stderr}`);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(await fileSha256('sym.bin'), await sha256(name));
});

test('a lock file with no pid in it is not taken while it is fresh', { timeout: 60_000 }, async () => {
  const name = unique('cli-empty-lock');
  await configure(name, `size=${MiB}&seed=60`);
  await fs.writeFile(path.join(cwd, 'e.bin.part.lock'), '');
  const locked = await run([fileUrl(name), '-o', 'e.bin']);
  assert.equal(locked.code, 5, locked.stderr);
  assert.match(locked.stderr, /another resumable-fetch is downloading to .*e\.bin/);
  assert.ok(!(await exists('e.bin')));
});

test('progress never shows 100 % before the file is stored and checked', { timeout: 120_000 }, async () => {
  const name = unique('cli-not-done');
  await configure(name, `size=${3 * MiB}&seed=61`);
  // Every byte arrives and is stored, then the check fails: the file is never complete.
  // (Whether a progress event comes between the last byte and the check is timing: a few runs.)
  for (let i = 0; i < 6; i += 1) {
    const done = await run([fileUrl(name), '-o', 'bad.bin', '-c', '1', '--block-size', '1M', '--integrity', `sha256-${'A'.repeat(43)}=`]);
    assert.equal(done.code, 6, done.stderr);
    assert.doesNotMatch(done.stderr, /^100% /m, `run ${i}: 100 % was shown for a file that failed its check`);
  }
});
