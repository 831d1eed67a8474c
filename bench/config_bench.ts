/**
 * How long loading a config takes: the example, and a large generated one
 * (200 repositories, 1,000 machines), valid and with one problem per machine
 * (which adds locating every key's line). `forrest serve` re-reads the file
 * on every change, so this must stay far below a human's notice.
 */

import { ConfigError, parseConfig } from "../src/config/mod.ts";

const example = await Deno.readTextFile(
  new URL("../forrest.toml.example", import.meta.url),
);

function large(withProblems: boolean): string {
  const parts = [
    `[host]\nbase_dir = "/srv/forrest"\nram = "4T"\ncpus = 4096\n`,
    `[snippets.small]\ncpus = 2\nram = "4G"\ndisk = "20G"\n`,
    `[snippets.debian]\nbase_image = "images/debian.img"\n`,
  ];
  for (let r = 0; r < 200; r++) {
    parts.push(
      `[repositories.owner${r}.repo${r}]\npersistence_token = "t${r}"\n`,
    );
    for (let m = 0; m < 5; m++) {
      parts.push(`[repositories.owner${r}.repo${r}.machines.m${m}]
extends = ["small", "debian"]
labels = ["x86_64", "m${m}"]
${withProblems ? 'rma = "8G"' : 'ram = "8G"'}
${
        m > 0
          ? `base_machine = "owner${r}/repo${r}/m0"`
          : ""
      }
`);
    }
  }
  return parts.join("\n");
}

const valid = large(false);
const broken = large(true);

Deno.bench(
  "parseConfig(): the example",
  { group: "config", baseline: true },
  () => {
    parseConfig(example, { file: "forrest.toml", cwd: "/etc/forrest" });
  },
);

Deno.bench("parseConfig(): 1,000 machines, valid", { group: "config" }, () => {
  parseConfig(valid, { file: "forrest.toml", cwd: "/etc/forrest" });
});

Deno.bench(
  "parseConfig(): 1,000 machines, 1,000 problems",
  { group: "config" },
  () => {
    try {
      parseConfig(broken, { file: "forrest.toml", cwd: "/etc/forrest" });
      throw new Error("expected problems");
    } catch (error) {
      if (
        !(error instanceof ConfigError) || error.problems.length !== 1000
      ) throw error;
    }
  },
);
