// Drives mqtape web's page in Firefox (puppeteer-core over WebDriver BiDi)
// for mqtape's cross-browser test: node firefox.mjs FIREFOX BASE_URL.
// Opens BASE_URL?q=plant/1/temp .celsius>30, then BASE_URL, presses j j and
// then filters in the box; prints one JSON object of what the page showed.
// Exits 1 on any error.
import puppeteer from 'puppeteer-core';

const [firefox, base] = process.argv.slice(2);
const topics = () => Array.from(document.querySelectorAll('#rows tr td.topic'), (td) => td.textContent);
const rowsShown = () => !!document.querySelector('#rows tr') && document.getElementById('status').textContent === '';

const browser = await puppeteer.launch({ browser: 'firefox', executablePath: firefox, headless: true, timeout: 60000,
  extraPrefsFirefox: { 'browser.shell.checkDefaultBrowser': false } });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  const out = { userAgent: await browser.version() };
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto(base + '?q=' + encodeURIComponent('plant/1/temp .celsius>30'));
  await page.waitForFunction(rowsShown);
  out.fromURL = { q: await page.$eval('#q', (e) => e.value), topics: await page.evaluate(topics) };

  await page.goto(base);
  await page.waitForFunction(rowsShown);
  out.topics = await page.evaluate(topics);
  out.title = await page.title();
  out.injected = await page.evaluate(() => !!document.querySelector('#injected, img, svg, body script') || document.scripts.length !== 1);
  out.pwned = await page.evaluate(() => window.pwned === 1);
  await page.waitForFunction(() => document.getElementById('file').textContent !== '');
  out.header = await page.$eval('#file', (e) => e.textContent);

  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  out.search = await page.evaluate(() => location.search);
  out.detail = await page.$eval('#detail', (e) => e.textContent);

  await page.click('#q', { count: 3 });
  await page.keyboard.type('plant/2/#');
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#rows tr').length === n && document.getElementById('status').textContent === '', {}, 10);
  out.filtered = await page.evaluate(topics);
  out.errors = errors;
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
