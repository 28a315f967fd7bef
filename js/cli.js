#!/usr/bin/env node
// `npx resumable-fetch <url> -o file`: a resumable download on the command
// line. The bytes go straight into FILE.part (a record beside it says which
// are there); Ctrl-C keeps them, and the same command again continues. When
// the file is complete (and checked, with --integrity) FILE.part becomes FILE.
// The download is keyed by FILE, not the URL, so a fresh URL for the same
// FILE (a signed URL renewed) continues too: the stored bytes are checked
// against the new URL first.

import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import init, { Download } from './node.js';
import { fileStore } from './stores/node.js';

const USAGE = `usage: resumable-fetch <url> [-o FILE] [options]

Downloads <url> in HTTP Range blocks into FILE.part, then renames it to FILE.
Interrupted (Ctrl-C, a lost connection, a crash), the same command continues
from the bytes already stored.

  -o, --output FILE        where to save (default: the URL's file name, here)
      --id ID              the key the download is stored under (default: FILE)
  -H, --header 'N: V'      an extra request header (repeatable)
  -A, --user-agent UA      the User-Agent header
  -e, --referer URL        the Referer header
  -b, --cookie 'a=1; b=2'  the Cookie header
  -c, --connections N      parallel range requests (1-16, default 4)
      --block-size SIZE    bytes per request, e.g. 8M or 512K (default 8M)
      --integrity SRI      the file's digest, e.g. sha256-<base64>
      --retries N          failed attempts in a row before giving up (default 5)
  -q, --quiet              no progress bar
  -h, --help               this help
  -V, --version            the version

Exit status: 0 done; 1 internal error; 2 wrong arguments; 3 network failure;
4 the server's answer (HTTP error, changed file, unusable response);
5 local storage (disk full, file exists, another download of it running);
6 integrity mismatch; 130 interrupted (Ctrl-C), 143 terminated.`;

const EXIT = {
  INVALID_ARGUMENT: 2,
  NETWORK: 3,
  HTTP_STATUS: 4,
  SERVER_CHANGED: 4,
  BAD_RESPONSE: 4,
  CORS_HEADERS_HIDDEN: 4,
  QUOTA_EXCEEDED: 5,
  STORAGE_UNAVAILABLE: 5,
  STORAGE_CORRUPT: 5,
  STORAGE_FAILED: 5,
  LOCKED: 5,
  INTEGRITY_MISMATCH: 6,
};
const SIGNALS = { SIGINT: 130, SIGTERM: 143 };

/** A failure to report: its message, and the exit status. */
class Failure extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        output: { type: 'string', short: 'o' },
        id: { type: 'string' },
        header: { type: 'string', short: 'H', multiple: true, default: [] },
        'user-agent': { type: 'string', short: 'A' },
        referer: { type: 'string', short: 'e' },
        cookie: { type: 'string', short: 'b' },
        connections: { type: 'string', short: 'c' },
        'block-size': { type: 'string' },
        integrity: { type: 'string' },
        retries: { type: 'string' },
        quiet: { type: 'boolean', short: 'q', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'V', default: false },
      },
    });
  } catch (e) {
    throw new Failure(`${e.message}\n\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help || values.version) return values;
  if (positionals.length !== 1) {
    throw new Failure(`${positionals.length ? 'give one URL' : 'the URL is missing'}\n\n${USAGE}`, 2);
  }
  const headers = [];
  for (const line of values.header) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Failure(`-H ${JSON.stringify(line)}: expected 'Name: value'`, 2);
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  if (values['user-agent'] !== undefined) headers.push(['User-Agent', values['user-agent']]);
  if (values.referer !== undefined) headers.push(['Referer', values.referer]);
  if (values.cookie !== undefined) headers.push(['Cookie', values.cookie]);
  const options = { headers };
  if (values.connections !== undefined) options.connections = integer('--connections', values.connections);
  if (values['block-size'] !== undefined) options.blockSize = size(values['block-size']);
  if (values.retries !== undefined) options.retries = integer('--retries', values.retries);
  if (values.integrity !== undefined) options.integrity = values.integrity;
  return { url: positionals[0], output: values.output, id: values.id, quiet: values.quiet, options };
}

function integer(flag, text) {
  if (!/^\d+$/.test(text)) throw new Failure(`${flag} ${JSON.stringify(text)}: expected a whole number`, 2);
  return Number(text);
}

function size(text) {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(text);
  if (!m) throw new Failure(`--block-size ${JSON.stringify(text)}: expected bytes, e.g. 8M or 512K`, 2);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf(m[2].toUpperCase() || ' ');
}

// ---- the terminal ------------------------------------------------------------

function bytes(n) {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function clock(seconds) {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return (hms[0] ? hms : hms.slice(1)).map((v, i) => (i ? String(v).padStart(2, '0') : v)).join(':');
}

/**
 * The progress line: a bar on a terminal, a line every 10 % otherwise.
 * `received` counts bytes still in flight, so 100 % waits for `complete()`.
 */
function progressReporter(quiet) {
  const tty = process.stderr.isTTY;
  let lastTenth = -1;
  let last = {};
  let complete = false;
  const render = (progress) => {
    last = progress;
    if (quiet) return;
    const { received, total, bytesPerSecond, etaSeconds } = progress;
    const fraction = complete ? 1 : total ? Math.min(received / total, 0.999) : undefined;
    const amount = `${bytes(received)}${total !== undefined ? ` / ${bytes(total)}` : ''}`;
    const speed = `${bytes(bytesPerSecond ?? 0)}/s`;
    if (!tty) {
      const tenth = fraction === undefined ? -1 : Math.floor(fraction * 10);
      if (tenth > lastTenth) {
        lastTenth = tenth;
        process.stderr.write(`${Math.floor(fraction * 100)}% ${amount} ${speed}\n`);
      }
      return;
    }
    const info = ` ${amount}  ${speed}  ETA ${clock(etaSeconds)}`;
    const pct = fraction === undefined ? '   ?%' : `${String(Math.floor(fraction * 100)).padStart(4)}%`;
    const width = Math.max(10, (process.stderr.columns || 80) - pct.length - info.length - 3);
    const filled = fraction === undefined ? 0 : Math.floor(width * fraction);
    process.stderr.write(`\r${pct} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${info}\x1b[K`);
  };
  return {
    render,
    /** The file is stored (and checked): 100 %. */
    complete(total) {
      complete = true;
      render({ bytesPerSecond: 0, ...last, received: total, total, etaSeconds: 0 });
    },
    done() { if (tty && !quiet) process.stderr.write('\n'); },
  };
}

// ---- the download ---------------------------------------------------------------

async function exists(file) {
  return fs.access(file).then(() => true, () => false);
}

/** What messages call the partial file. */
let partialFile = 'the partial file';

async function main(argv) {
  const args = parse(argv);
  if (args.help) return void console.log(USAGE);
  if (args.version) {
    const pkg = JSON.parse(await fs.readFile(new URL('./package.json', import.meta.url), 'utf8'));
    return void console.log(pkg.version);
  }
  await init();

  // The output's name: -o, else the URL's last segment (the same on every run,
  // so the same command finds its partial file).
  let output = args.output;
  if (output === undefined) {
    const probe = await Download.open(args.url, { ...args.options, store: 'memory' });
    output = probe.filename;
    probe.free();
  }
  output = path.resolve(output);
  const partial = `${output}.part`;
  partialFile = partial;
  const id = args.id ?? output;
  const store = fileStore(path.dirname(output), { name: 'file', path: () => partial });
  const release = await store.lock(id);
  if (!release) {
    const pid = Number((await fs.readFile(`${partial}.lock`, 'utf8').catch(() => '')).split('\n')[0]);
    throw new Failure(`another resumable-fetch${pid > 0 ? ` (pid ${pid})` : ''} is downloading to ${output}`
      + ` (if none is, remove ${partial}.lock)`, 5);
  }
  try {
    await download(args, output, partial, id, store);
  } finally {
    await release();
  }
}

/** The download itself, under the lock of `partial`. */
async function download(args, output, partial, id, store) {
  const record = await store.getRecord(id);
  if (await exists(output)) {
    // An earlier run renamed FILE.part to FILE and was stopped before it removed the record.
    if (record && !(await lexists(partial))) {
      await fs.rm(`${partial}.record`, { force: true });
      if (!args.quiet) process.stderr.write(`${output} is already saved (an earlier run finished it)\n`);
      return;
    }
    throw new Failure(`${output} already exists; remove it or choose another name with -o`, 5);
  }
  // Bytes no record claims are worth nothing, and may run past the file's end;
  // rm also takes away anything planted there (a symbolic link is not followed).
  if (!record) await fs.rm(partial, { force: true });

  // The lock is held here: the store given to the download has none to take.
  const { lock: _, ...unlocked } = store;
  const dl = await Download.open(args.url, { ...args.options, id, store: unlocked });
  const progress = progressReporter(args.quiet);
  if (dl.received > 0 && !args.quiet) {
    process.stderr.write(`resuming: ${bytes(dl.received)}${dl.total !== undefined ? ` of ${bytes(dl.total)}` : ''} already stored\n`);
  }
  dl.onprogress = progress.render;
  dl.onrestart = ({ message }) => process.stderr.write(`\nstarting over: ${forTerminal(message, partial)}\n`);

  let stopping = null;
  const stop = (signal) => {
    if (stopping) process.exit(SIGNALS[signal]); // a second Ctrl-C: at once
    stopping = signal;
    dl.pause().catch(() => {});
  };
  for (const signal of Object.keys(SIGNALS)) process.on(signal, stop);

  let outcome;
  try {
    outcome = await dl.start();
    if (outcome === 'complete') progress.complete(dl.total ?? dl.received);
  } catch (e) {
    // The bytes that failed the check are worth nothing: no partial file is left.
    if (e && e.code === 'INTEGRITY_MISMATCH') await store.delete(id);
    throw e;
  } finally {
    progress.done();
    for (const signal of Object.keys(SIGNALS)) process.off(signal, stop);
  }
  if (outcome !== 'complete') {
    const stored = `${bytes(dl.received)}${dl.total !== undefined ? ` of ${bytes(dl.total)}` : ''}`;
    throw new Failure(`paused with ${stored} stored in ${partial}; run the same command again to continue`,
      SIGNALS[stopping] ?? 1);
  }
  const total = dl.total ?? dl.received;
  dl.free();
  // FILE is exactly the download: bytes of an earlier, longer file past its end are cut.
  const handle = await fs.open(partial, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    await handle.truncate(total);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(partial, output);
  await fs.rm(`${partial}.record`, { force: true });
  if (!args.quiet) process.stderr.write(`saved ${output} (${bytes(total)})\n`);
}

async function lexists(file) {
  return fs.lstat(file).then(() => true, () => false);
}

/** The library's message, in the words of this command rather than of its JS API. */
function forTerminal(message, partial) {
  const words = [
    [/call start\(\) again once/g, 'run the same command again once'],
    [/call start\(\) again, or raise stallTimeoutMs for a slow server/g, 'run the same command again'],
    [/call start\(\) again/g, 'run the same command again'],
    [/the stored bytes were discarded, and start\(\) downloads the file again/g, 'nothing was saved'],
    [/open the download again with a fresh URL and the same id to continue/g, 'run the command again with a fresh URL and the same -o to continue'],
    [/remove the download and start again, or open it with onServerChange: 'restart' to do that automatically/g, `remove ${partial} and run the command again`],
    [/remove the download and start again/g, `remove ${partial} and ${partial}.record and run the command again`],
    [/free space \(for example remove other downloads\)/g, 'free disk space'],
    [/the custom store's (\w+)\(\)/g, (_, method) => `${STORE_STEPS[method] ?? 'storing'} ${partial}`],
    [/; choose another `store`, e\.g\. 'auto'/g, ''],
    [/invalid `(\w+)`/g, (_, option) => `invalid ${FLAGS[option] ?? option}`],
    [/`/g, ''],
  ];
  return words.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), message);
}

const STORE_STEPS = {
  getRecord: 'reading the record of', putRecord: 'saving the record of', records: 'listing',
  write: 'writing', read: 'reading', delete: 'removing', file: 'reading', size: 'reading',
};
const FLAGS = {
  connections: '--connections', blockSize: '--block-size', retries: '--retries', integrity: '--integrity',
  headers: '-H', 'url, headers or referrer': 'URL or header',
};

try {
  await main(process.argv.slice(2));
  process.exit(0);
} catch (e) {
  if (e instanceof Failure) {
    process.stderr.write(`resumable-fetch: ${e.message}\n`);
    process.exit(e.status);
  }
  const code = e && e.name === 'DownloadError' ? e.code : undefined;
  const message = code ? forTerminal(e.message, partialFile) : e && e.message ? e.message : e;
  process.stderr.write(`resumable-fetch: ${message}${code ? ` (${code})` : ''}\n`);
  process.exit(EXIT[code] ?? 1);
}
