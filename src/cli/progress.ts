/**
 * Progress for long commands on stderr: each phase with its elapsed time,
 * and on a terminal a download bar with bytes and rate. (One line of text
 * is all it needs; a progress-bar library would bring a dependency and its
 * own idea of the terminal for that.)
 */

import type { BuildReporter } from "../images/mod.ts";
import type { Output } from "./output.ts";

const MiB = 1024 * 1024;
const encoder = new TextEncoder();

export function stderrReporter(
  output: Output,
  terminal = Deno.stderr.isTerminal(),
): BuildReporter {
  let barStart = 0;
  let lastDraw = 0;
  return {
    phase(name) {
      const start = performance.now();
      output.err(`forrest: ${name}…`);
      return () => {
        if (terminal && barStart) Deno.stderr.writeSync(encoder.encode("\n"));
        barStart = 0;
        output.err(
          `forrest: ${name}: done in ${
            ((performance.now() - start) / 1000).toFixed(1)
          } s`,
        );
      };
    },
    download(done, total) {
      if (!terminal) return;
      const now = performance.now();
      barStart ||= now;
      if (now - lastDraw < 100 && done !== total) return;
      lastDraw = now;
      const rate = done / MiB / Math.max(0.001, (now - barStart) / 1000);
      const width = 30;
      const filled = total ? Math.round((done / total) * width) : 0;
      const bar = total
        ? `[${"#".repeat(filled)}${" ".repeat(width - filled)}] `
        : "";
      const size = total
        ? `${(done / MiB).toFixed(1)} / ${(total / MiB).toFixed(1)} MiB`
        : `${(done / MiB).toFixed(1)} MiB`;
      Deno.stderr.writeSync(
        encoder.encode(`\r${bar}${size}, ${rate.toFixed(1)} MiB/s `),
      );
    },
  };
}
