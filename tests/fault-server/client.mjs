// The fault server's admin API from JavaScript, for the runtime, command-line
// and end-to-end tests: files, their SHA-256, and the log of what was really
// sent. The server is at $FAULT_SERVER.

export const MiB = 1024 * 1024;

export function server() {
  const url = process.env.FAULT_SERVER;
  if (!url) throw new Error('FAULT_SERVER is not set: the URL of the fault server (tests/fault-server)');
  return url;
}

let files = 0;
/** A file name no other test (or earlier run) uses. */
export function unique(name) {
  files += 1;
  return `${name}-${process.pid}-${Date.now().toString(36)}-${files}`;
}

async function admin(method, route) {
  const response = await fetch(`${server()}/_admin/${route}`, { method });
  const text = await response.text();
  if (!response.ok) throw new Error(`fault server: ${method} /_admin/${route}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** Creates or changes the file `name` (parameters as in tests/fault-server). */
export const configure = (name, params) => admin('POST', `files/${name}?${params}`);
export const fileUrl = (name) => `${server()}/files/${name}`;
export const sha256 = async (name) => (await admin('GET', `sha256/${name}`)).sha256;

/** The file's GETs: status, the start of the range asked, bytes sent, request headers, fault, and the entry as logged. */
export async function gets(name) {
  const entries = await admin('GET', `log/${name}`);
  return entries
    .filter((e) => e.method === 'GET')
    .map((e) => {
      const range = /^bytes=(\d+)-/.exec(e.range ?? '');
      return {
        status: e.status, start: range ? Number(range[1]) : null, sent: e.sent, headers: e.headers, fault: e.fault,
        line: JSON.stringify(e),
      };
    });
}

export const clearLog = (name) => admin('POST', `log/${name}/clear`);

/** Polls `condition` every 50 ms for at most `ms`; fails with `what` if it never holds. */
export async function until(condition, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
