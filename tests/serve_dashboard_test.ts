/**
 * The dashboard in a real browser (product.md §17): headless Chromium
 * loads `GET /` from a running `forrest serve` against the GitHub double,
 * and a job's machine goes from starting to running to gone on the page
 * without a reload; its boot log opens on a click. The screenshot taken
 * while the job runs is the test's artifact (docs/dashboard.png comes from
 * it): `FORREST_TEST_ARTIFACTS` names where it goes.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { withBrowser } from "./browser.ts";
import { testDebianImage } from "./debian_image.ts";
import { LABELS, OWNER, REPO, withServe } from "./serve.ts";
import { withTempDir } from "./temp.ts";

const JOB_TIMEOUT = 240_000;

/** A free TCP port on the loopback, for the daemon's second listener. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The state cell of the machine row of `runner`, or "" when none. */
const stateOf = (runner: string) =>
  `(document.querySelector('#machines tr[data-runner="${runner}"] td.state')?.textContent ?? "")`;

Deno.test({
  name:
    "dashboard: Chromium shows a job's machine go from starting to running to gone, without a reload",
  async fn() {
    const image = await testDebianImage();
    const address = `127.0.0.1:${freePort()}`;
    await withTempDir(async (scratch) => {
      const artifacts = Deno.env.get("FORREST_TEST_ARTIFACTS") ?? scratch;
      await Deno.mkdir(artifacts, { recursive: true });
      await withServe({ image, tcp: address }, async (s) => {
        await withBrowser(async (browser) => {
          const page = await browser.open(`http://${address}/`);
          await page.waitFor(
            `document.querySelector("#machines") !== null`,
            10_000,
            "the view",
          );
          assert.match(await page.text("#machines"), /No machines\./);
          const loads = page.reloads();

          const job = await s.double.queueJob({
            owner: OWNER,
            repo: REPO,
            labels: LABELS,
            script: "sleep 8",
          });
          const status = await s.waitForStatus(
            (st) => st.machines.length === 1,
            30_000,
            "a machine",
          );
          const runner = status.machines[0]!.runner;
          await page.waitFor(
            `["registering", "registered", "starting"].includes(${
              stateOf(runner)
            })`,
            10_000,
            "the machine on its way",
          );
          await page.waitFor(
            `${stateOf(runner)} === "running"`,
            JOB_TIMEOUT,
            "the machine running",
          );
          const row = await page.text(`#machines tr[data-runner="${runner}"]`);
          assert.match(row, /octo\/app\/debian/);
          assert.match(row, /debian-bookworm-\S+\.img/, "the image it booted");
          assert.match(await page.text("#budgets"), /1\.0 GiB of 4\.0 GiB/);
          assert.match(await page.text("#budgets"), /1 in use \(no CPU budget/);
          await page.screenshot(join(artifacts, "dashboard.png"));

          // The boot log, on a click.
          await page.evaluate(
            `document.querySelector('button.log[data-runner="${runner}"]').click()`,
          );
          await page.waitFor(
            `document.querySelector("#log-text").textContent.length > 100`,
            10_000,
            "the boot log",
          );
          assert.doesNotMatch(await page.text("#log-text"), /No boot log/);
          await page.evaluate(`document.querySelector("#log").close()`);

          await s.double.waitFor(
            () => s.double.job(job.id)?.status === "completed",
            JOB_TIMEOUT,
            "the job completed",
          );
          await page.waitFor(
            `${stateOf(runner)} === ""`,
            60_000,
            "the machine gone",
          );
          assert.match(await page.text("#recent"), new RegExp(runner));
          assert.equal(page.reloads(), loads, "no reload");
          assert.deepEqual(page.consoleErrors(), []);
        });
      });
    });
  },
});
