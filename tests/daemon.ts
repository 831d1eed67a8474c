/**
 * A `forrest serve` daemon in the test's own process (no sockets of its
 * own, no VMs unless a job asks for one): a config of `[host]` in a temp
 * folder plus `scopesToml`, the GitHub forge with an App at `apiUrl`, and
 * the guest API, all stopped afterwards.
 */

import { parseConfig } from "../src/config/mod.ts";
import { GitHubForge } from "../src/forge/mod.ts";
import { GuestApi } from "../src/guest_api/mod.ts";
import { Secret } from "../src/log/mod.ts";
import { Daemon } from "../src/serve/mod.ts";
import { withTempDir } from "./temp.ts";

export interface DaemonSetup {
  /** Scope tables, after `[host]`. */
  readonly scopesToml: string;
  readonly apiUrl: string;
  /** The App's private key (PEM). */
  readonly appKey: string;
  readonly webhookSecret: string;
}

export async function withDaemon<T>(
  setup: DaemonSetup,
  body: (daemon: Daemon, forge: GitHubForge) => Promise<T>,
): Promise<T> {
  return await withTempDir(async (dir) => {
    const config = parseConfig(
      `[host]\nbase_dir = "${dir}"\nram = "4G"\n${setup.scopesToml}`,
      { file: "forrest.toml", cwd: dir },
    );
    const forge = new GitHubForge({
      app: { appId: 1, privateKey: new Secret(setup.appKey) },
      webhookSecret: new Secret(setup.webhookSecret),
      apiUrl: setup.apiUrl,
      retries: 0,
    });
    const guestApi = new GuestApi();
    await guestApi.listen();
    const daemon = new Daemon({
      config,
      forges: { github: forge, forgejo: new Map() },
      guestApi,
    });
    try {
      return await body(daemon, forge);
    } finally {
      await daemon.stop();
      await guestApi.close();
    }
  });
}
