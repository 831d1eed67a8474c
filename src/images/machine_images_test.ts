import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../../tests/temp.ts";
import { pathExists } from "../host/mod.ts";
import { allMachines, parseConfig } from "../config/mod.ts";
import {
  imageFacts,
  machineImagePath,
  quarantineImage,
} from "./machine_images.ts";

const CONFIG = (base: string) =>
  `[host]
base_dir = "${base}"
ram = "8G"
[repositories.acme.images.machines.debian-base]
base_image = "images/debian.img"
[repositories.acme.app.machines.build]
base_machine = "acme/images/debian-base"
[repositories.acme.app.machines.own]
cpus = 1
`;

Deno.test("imageFacts() finds own and base images, and whether the base machine runs", async () => {
  await withTempDir(async (base) => {
    const config = parseConfig(CONFIG(base), {
      file: "forrest.toml",
      cwd: base,
    });
    const [debianBase, build, own] = allMachines(config);
    await Deno.mkdir(join(base, "images"));
    await Deno.writeTextFile(join(base, "images/debian.img"), "src");
    const running = new Set<string>();
    const isRunning = (t: { machine: string }) => running.has(t.machine);

    assert.deepEqual(await imageFacts(debianBase!, base, isRunning), {
      own: undefined,
      base: {
        path: join(base, "images/debian.img"),
        mtime: (await Deno.stat(join(base, "images/debian.img"))).mtime!
          .getTime(),
      },
      basePath: join(base, "images/debian.img"),
      ownPath: join(base, "machines/acme/images/debian-base.img"),
      baseMachineRunning: false,
    });

    const baseImage = machineImagePath(base, debianBase!.triplet);
    assert.equal(baseImage, join(base, "machines/acme/images/debian-base.img"));
    running.add("debian-base");
    const facts = await imageFacts(build!, base, isRunning);
    assert.equal(facts.base, undefined);
    assert.equal(facts.basePath, baseImage);
    assert.equal(facts.baseMachineRunning, true);

    // No base at all: only the machine's own image counts.
    const ownFacts = await imageFacts(own!, base, isRunning);
    assert.equal(ownFacts.basePath, undefined);
    assert.equal(ownFacts.base, undefined);
    assert.equal(ownFacts.ownPath, join(base, "machines/acme/app/own.img"));
  }, "fm-"); // short: the config refuses base_dirs too deep for sockets
});

Deno.test("quarantineImage() moves an image aside as .broken, replacing an older one", async () => {
  await withTempDir(async (dir) => {
    const image = join(dir, "build.img");
    await Deno.writeTextFile(`${image}.broken`, "older");
    await Deno.writeTextFile(image, "newer");
    assert.equal(await quarantineImage(image), `${image}.broken`);
    assert.equal(await Deno.readTextFile(`${image}.broken`), "newer");
    assert.equal(await pathExists(image), false);
  });
});

Deno.test("machineImagePath() refuses names unsafe in a path", () => {
  assert.throws(
    () =>
      machineImagePath("/srv", {
        scope: { kind: "repository" as const, owner: "acme", repo: ".." },
        machine: "m",
      }),
    /not a valid GitHub repository name/,
  );
});
