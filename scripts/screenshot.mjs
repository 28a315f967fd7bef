#!/usr/bin/env node
// Retakes the README's screenshot of the demo page mid-download:
//   make demo            # in one terminal; prints the URL
//   node scripts/screenshot.mjs http://127.0.0.1:8080/
// Uses a fresh Chromium profile, starts the slow sample, and captures the page
// at about 40 % into www/screenshot.png.
import { chromium } from 'playwright-core';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const base = process.argv[2];
if (!base) {
  console.error('usage: node scripts/screenshot.mjs DEMO_URL');
  process.exit(2);
}
const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'rf-screenshot-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu'],
  viewport: { width: 900, height: 600 },
  deviceScaleFactor: 1,
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  await page.goto(base);
  await page.waitForSelector('html[data-ready="true"]');
  await page.click('[data-testid="use-slow"]');
  await page.click('[data-testid="start"]');
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="status"]');
    return Number(el.dataset.received) >= 0.4 * Number(el.dataset.total || Infinity);
  }, null, { timeout: 60_000, polling: 100 });
  await page.click('[data-testid="refresh"]');
  await page.waitForTimeout(300);
  const out = new URL('../www/screenshot.png', import.meta.url);
  await page.screenshot({ path: out.pathname, fullPage: true });
  console.log(`wrote ${out.pathname}`);
} finally {
  await context.close();
  await fs.rm(profile, { recursive: true, force: true });
}
