/**
 * `forrest serve` without its command line and sockets: webhooks and the
 * poller feed jobs to the core, the janitor feeds it runners, a timer
 * wakes it, and the executor carries out what it decides.
 */

import { getLogger } from "@logtape/logtape";
import { errorText } from "../log/mod.ts";
import {
  allMachines,
  type Config,
  DEFAULT_FORGEJO_POLLING_INTERVAL,
  DEFAULT_JANITOR_INTERVAL,
  DEFAULT_POLLING_INTERVAL,
  DEFAULT_QUEUED_POLLING_INTERVAL,
  describeScope,
  forgeOf,
  type MachineConfig,
  type Scope,
  scopeKey,
  tripletName,
} from "../config/mod.ts";
import {
  Core,
  type Decision,
  DEFAULT_CORE_OPTIONS,
  type JobChange,
  type JobReport,
  runnerLabels,
  type RunnerReport,
  type Status,
} from "../core/mod.ts";
import { randomSuffix } from "../run/mod.ts";
import {
  forgeOfScope,
  type Forges,
  ForgeSetupError,
  hasForge,
  type PollingForge,
  type RepoRef,
  type ScopeNeeds,
} from "../forge/mod.ts";
import { Executor } from "./executor.ts";
import { type GuestApi, storeFolder, sweepUploads } from "../guest_api/mod.ts";
import { type ImageEntry, listImages } from "../images/mod.ts";
import { Metrics, type WebhookOutcome } from "./metrics.ts";
import { Periodic } from "./periodic.ts";
import { PollPacer } from "./poll_pacer.ts";
import { type RecoveredRun, recoverRuns } from "./recovery.ts";
import {
  type ScaleSetEvents,
  type ScaleSetForge,
  ScaleSetListener,
} from "./scale_set_listener.ts";

export interface DaemonOptions {
  readonly config: Config;
  /** GitHub and each Forgejo instance the config had at start. */
  readonly forges: Forges;
  /** Listening already: machines' runs are added to it as they are made. */
  readonly guestApi: GuestApi;
  /** The scale-set sessions' owner name; the host's name by default. */
  readonly owner?: string;
  /** First delay of a scale-set listener after a failure (ms); tests shorten it. */
  readonly scaleSetBackoff?: number;
}

export interface WebhookAnswer {
  readonly status: 200 | 202 | 204 | 400 | 401 | 404;
  readonly body: string;
  readonly outcome: WebhookOutcome;
}

/** Queued jobs older than this are given up by GitHub; we don't look. */
const POLL_WINDOW = 24 * 3600_000;
/** The longest a failing Forgejo instance waits between polls. */
const MAX_POLL_BACKOFF = 5 * 60_000;
/**
 * How often warm machines' images are compared with what their type would
 * boot now: a rebuild by `forrest image build` is noticed within this.
 * Persists by Forrest's own runs are noticed at once.
 */
const IMAGE_CHECK_INTERVAL = 10_000;
/** How long a listing of the images is shown before the next (ms). */
const IMAGES_TTL = 30_000;
/** Delivery ids remembered, to ignore redeliveries. */
const DELIVERIES_KEPT = 10_000;

export class Daemon {
  readonly core: Core;
  readonly metrics = new Metrics();
  readonly #forges: Forges;
  readonly #executor: Executor;
  readonly #log = getLogger(["forrest", "serve"]);
  readonly #deliveries = new Set<string>();
  /** Runners of runs an earlier Forrest left: deleted once listed. */
  readonly #recoveredRunners = new Map<string, Scope>();
  #tickTimer: ReturnType<typeof setTimeout> | undefined;
  #tickAt = Infinity;
  readonly #poller = new Periodic(
    () => this.#poll(),
    () => this.core.config.github?.pollingInterval ?? DEFAULT_POLLING_INTERVAL,
  );
  /**
   * The quick poll: conditional listings of queued and running runs, so
   * that a lost webhook's job is found within queued_polling_interval,
   * at no rate-limit cost while nothing changes (docs/jobs.md).
   */
  readonly #quickPoller = new Periodic(
    () => this.#pollQueued(),
    () => this.#quickPacer.delay(this.#quickInterval(), Date.now()),
  );
  /** Lengthens the quick poll's interval to keep it within its budget. */
  readonly #quickPacer = new PollPacer();
  #lastQuickRound = { requests: 0, notModified: 0 };
  /** Repositories whose last quick listing failed (logged once). */
  readonly #quickFailing = new Set<string>();
  /** Each organization's repositories, as the full poll last listed them. */
  readonly #orgRepos = new Map<string, RepoRef[]>();
  /** Jobs being asked of GitHub after a self-contradicting delivery. */
  readonly #jobChecks = new Map<number, Promise<void>>();
  readonly #janitor = new Periodic(
    () => this.#janitorRound(),
    () => janitorInterval(this.core.config),
  );
  readonly #imageCheck = new Periodic(
    () =>
      this.#executor.checkImages().catch((error) =>
        this.#log.warn("Cannot check the images of warm machines: {error}", {
          error: errorText(error),
        })
      ),
    () => IMAGE_CHECK_INTERVAL,
  );
  /** Forgejo 15 has no job webhooks: each instance is polled on its own. */
  readonly #forgejoPollers: ReadonlyMap<string, Periodic>;
  /** Failed rounds in a row per instance: its polls back off meanwhile. */
  readonly #forgejoFailures = new Map<string, number>();
  /** Scopes whose last listing failed (logged once, not every round). */
  readonly #failingScopes = new Set<string>();
  /** Instances whose connect() succeeded. */
  readonly #forgejoConnected = new Set<string>();
  #stopped = false;
  readonly #stoppedSignal = new AbortController();
  #images: ImageEntry[] | undefined;
  #imagesAt = -Infinity;
  #imagesListing: Promise<ImageEntry[] | undefined> | undefined;
  /** One listener per scale-set machine type (discovery = "scale-set"). */
  readonly #listeners = new Map<string, ScaleSetListener>();
  readonly #options: DaemonOptions;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#forges = options.forges;
    this.#forgejoPollers = new Map(
      [...options.forges.forgejo.values()].map((forge) => [
        forge.name,
        new Periodic(
          () => this.#pollForgejo(forge),
          () => this.#forgejoInterval(forge.name),
        ),
      ]),
    );
    this.core = new Core(options.config, {
      ...DEFAULT_CORE_OPTIONS,
      randomSuffix,
    });
    this.#executor = new Executor({
      forges: options.forges,
      core: this.core,
      wake: () => this.wake(),
      now: Date.now,
      guestApi: options.guestApi,
    });
  }

  /**
   * Finds the installations and runner groups, then runs the first poll
   * and janitor round (the janitor first, so that leftovers from a crash go
   * before new runners are registered), then keeps both going on their
   * intervals. Throws a ForgeSetupError (a runner group that does not
   * exist, …): the config must change before Forrest can serve.
   */
  async start(): Promise<void> {
    const recovered = await recoverRuns(this.core.config.host.baseDir);
    for (const run of recovered) {
      this.#recoveredRunners.set(run.runner.toLowerCase(), run.triplet.scope);
    }
    await this.#sweepUploads(recovered);
    await Promise.all(
      this.#connections(this.core.config).map(async (connect) => {
        try {
          await connect();
        } catch (error) {
          if (error instanceof ForgeSetupError) throw error;
          // Not fatal: the poller tries again, and webhooks still arrive.
          this.#log.error("{error}", { error: errorText(error) });
        }
      }),
    );
    await this.janitor();
    await this.poll();
    // The full poll just listed everything: the quick one starts after it.
    this.#quickPoller.later();
    this.#imageCheck.run();
    this.#listen(this.core.config);
  }

  /** Whether GitHub's jobs come through scale sets, not webhooks and polls. */
  #scaleSets(): boolean {
    return this.core.config.github?.discovery === "scale-set" &&
      this.#forges.github !== undefined;
  }

  /**
   * A listener per scale-set machine type of `config`: new types get one,
   * those gone or changed have theirs stopped (its session deleted).
   */
  #listen(config: Config): void {
    const forge = this.#forges.github as Partial<ScaleSetForge> | undefined;
    if (this.#stopped || forge?.ensureScaleSet === undefined) return;
    const wanted = new Map<string, MachineConfig>();
    for (const machine of allMachines(config)) {
      if (machine.scaleSet === undefined) continue;
      wanted.set(listenerKey(machine), machine);
    }
    for (const [key, listener] of this.#listeners) {
      if (wanted.has(key)) continue;
      this.#listeners.delete(key);
      void listener.stop();
    }
    for (const [key, machine] of wanted) {
      if (this.#listeners.has(key)) continue;
      const listener = new ScaleSetListener({
        forge: forge as ScaleSetForge,
        config: machine,
        owner: this.#options.owner ?? Deno.hostname(),
        baseDir: config.host.baseDir,
        events: this.#scaleSetEvents,
        ...(this.#options.scaleSetBackoff === undefined
          ? {}
          : { backoff: this.#options.scaleSetBackoff }),
      });
      this.#listeners.set(key, listener);
      listener.start();
    }
  }

  readonly #scaleSetEvents: ScaleSetEvents = {
    statistics: (config, statistics) => {
      this.core.scaleSetStatistics(config.triplet, {
        assigned: statistics.totalAssignedJobs,
        running: statistics.totalRunningJobs,
      }, Date.now());
      this.wake();
    },
    jobStarted: (_config, job) => {
      this.core.runnerStarted(job.runnerName!, job.queueTime, Date.now());
      this.wake();
    },
    capacity: (config) => this.core.scaleSetCapacity(config.triplet),
  };

  /** A new valid config: new machines use it; running ones keep theirs. */
  setConfig(config: Config): void {
    this.core.setConfig(config, Date.now());
    this.#imageCheck.run();
    this.#listen(config);
    for (const connect of this.#connections(config)) {
      connect().catch((error) =>
        this.#log.error("{error}", { error: errorText(error) })
      );
    }
    this.wake();
  }

  /** Each running forge's connect(), with the scopes of the config it has. */
  #connections(config: Config): (() => Promise<void>)[] {
    const { github, forgejo } = this.#forges;
    return [
      ...(github ? [() => github.connect(needsOf(config, undefined))] : []),
      ...[...forgejo.values()].map((forge) => () =>
        this.#connectForgejo(forge, config)
      ),
    ];
  }

  /**
   * A Forgejo instance's connect(), remembered when it succeeds: one that
   * failed (the instance was down at start) is tried again after the next
   * poll that reaches it, so its leftovers are still swept.
   */
  async #connectForgejo(forge: PollingForge, config: Config): Promise<void> {
    await forge.connect(needsOf(config, forge.name));
    this.#forgejoConnected.add(forge.name);
  }

  /** One webhook delivery, verified before anything is read. */
  async webhook(headers: Headers, body: Uint8Array): Promise<WebhookAnswer> {
    const answer = (
      status: WebhookAnswer["status"],
      outcome: WebhookOutcome,
      text = "",
    ): WebhookAnswer => {
      this.metrics.webhook(outcome);
      return { status, body: text, outcome };
    };
    const github = this.#forges.github;
    if (github === undefined) {
      // Forgejo 15 sends no job webhooks; its jobs are polled.
      return answer(
        404,
        "unconfigured",
        "no [github] table: this Forrest takes no webhooks\n",
      );
    }
    if (this.#scaleSets()) {
      return answer(
        404,
        "unconfigured",
        'this Forrest finds jobs through runner scale sets ([github] discovery = "scale-set"): it takes no webhooks\n',
      );
    }
    const result = await github.parseWebhook(headers, body);
    switch (result.kind) {
      case "unauthorized":
        this.#log.warn("Webhook refused: {message}", {
          message: result.message,
        });
        return answer(401, "unauthorized", `${result.message}\n`);
      case "invalid":
        this.#log.warn("Webhook not understood: {message}", {
          message: result.message,
        });
        return answer(400, "invalid", `${result.message}\n`);
      case "ping":
        return answer(200, "ping", "pong\n");
      case "ignored":
        return answer(204, "ignored");
    }
    const { delivery, report } = result;
    if (delivery !== undefined) {
      if (this.#deliveries.has(delivery)) return answer(204, "duplicate");
      this.#deliveries.add(delivery);
      if (this.#deliveries.size > DELIVERIES_KEPT) {
        this.#deliveries.delete(this.#deliveries.values().next().value!);
      }
    }
    if (!this.core.serves(report)) {
      this.#log.debug("Job {id} of {owner}/{repo}: not a configured scope", {
        id: report.id,
        owner: report.owner,
        repo: report.repo,
      });
      return answer(204, "unconfigured");
    }
    const change = this.core.jobReported(report, Date.now());
    if (change.kind !== "none") {
      this.#log.info("Job {id} of {owner}/{repo} is {status} ({change})", {
        id: report.id,
        owner: report.owner,
        repo: report.repo,
        status: report.status,
        change: change.kind,
      });
    }
    if (result.disagreement !== undefined) {
      this.#checkJob(report, result.disagreement);
    }
    this.wake();
    return answer(202, "accepted");
  }

  /**
   * Lists active jobs of every GitHub repository (the truth behind
   * webhooks) and of every Forgejo scope.
   */
  async poll(): Promise<void> {
    await Promise.all([
      this.#poller.run(),
      ...[...this.#forgejoPollers.values()].map((poller) => poller.run()),
    ]);
  }

  /**
   * One round of a Forgejo instance: each of its scopes' jobs. A round in
   * which every listing failed (the instance is down) makes the next wait
   * twice as long, up to 5 minutes, and is logged once, not every round.
   */
  async #pollForgejo(forge: PollingForge): Promise<void> {
    let listed = 0;
    let failed = 0;
    for (const { scope } of this.core.config.scopes) {
      if (forgeOf(scope) !== forge.name || scope.kind === "enterprise") {
        continue;
      }
      const startedAt = Date.now();
      try {
        const jobs = await forge.listJobs(scope);
        const listing = scope.kind === "repository"
          ? { forge: forge.name, owner: scope.owner, repo: scope.repo }
          : { forge: forge.name, owner: scope.org };
        listed++;
        if (this.#failingScopes.delete(scopeKey(scope))) {
          this.#log.info("The jobs of {scope} are listed again", {
            scope: describeScope(scope),
          });
        }
        this.#logChanges(
          this.core.pollFinished(listing, jobs, startedAt, Date.now()),
        );
      } catch (error) {
        failed++;
        const fields = {
          scope: describeScope(scope),
          error: errorText(error),
        };
        const message = "Cannot list the jobs of {scope}: {error}";
        if (this.#failingScopes.has(scopeKey(scope))) {
          this.#log.debug(message, fields);
        } else {
          this.#failingScopes.add(scopeKey(scope));
          this.#log.warn(message, fields);
        }
      }
    }
    const failures = this.#forgejoFailures.get(forge.name) ?? 0;
    if (failed > 0 && listed === 0) {
      this.#forgejoFailures.set(forge.name, failures + 1);
    } else if (failures > 0) this.#forgejoFailures.delete(forge.name);
    if (listed > 0 && !this.#forgejoConnected.has(forge.name)) {
      // Once: a connect that fails now fails for what the config must fix.
      this.#forgejoConnected.add(forge.name);
      await forge.connect(needsOf(this.core.config, forge.name)).catch((
        error,
      ) => this.#log.error("{error}", { error: errorText(error) }));
    }
    this.wake();
  }

  #forgejoInterval(name: string): number {
    const interval = this.core.config.forgejo.find((f) => f.name === name)
      ?.pollingInterval ?? DEFAULT_FORGEJO_POLLING_INTERVAL;
    const failures = this.#forgejoFailures.get(name) ?? 0;
    if (failures === 0) return interval;
    const backoff = interval * 2 ** Math.min(failures, 16);
    return Math.max(interval, Math.min(MAX_POLL_BACKOFF, backoff));
  }

  async #poll(): Promise<void> {
    if (this.#forges.github === undefined || this.#scaleSets()) return;
    const repos = await this.#pollTargets();
    for (const repo of repos) {
      try {
        await this.#pollRepo(repo);
      } catch (error) {
        this.#log.warn("Cannot poll jobs of {owner}/{repo}: {error}", {
          owner: repo.owner,
          repo: repo.repo,
          error: errorText(error),
        });
      }
    }
    this.wake();
  }

  /**
   * The repositories a poll round lists jobs of: those configured, and
   * those of each organization (its `repositories`, or all it has, asked
   * of GitHub each round; the quick poll takes those the last round
   * listed). Enterprises are not polled: GitHub has no listing of an
   * enterprise's jobs; their jobs come by webhook.
   */
  async #pollTargets(listOrgs = true): Promise<RepoRef[]> {
    const github = this.#forges.github!;
    const repos = new Map<string, RepoRef>();
    const add = ({ owner, repo }: RepoRef) => {
      const key = `${owner}/${repo}`.toLowerCase();
      if (!repos.has(key)) repos.set(key, { owner, repo });
    };
    for (const entry of this.core.config.scopes) {
      const { scope } = entry;
      if (forgeOf(scope) !== undefined) continue;
      if (scope.kind === "repository") add(scope);
      if (scope.kind !== "organization") continue;
      if (entry.repositories !== undefined) {
        for (const repo of entry.repositories) {
          add({ owner: scope.org, repo });
        }
        continue;
      }
      const org = scope.org.toLowerCase();
      if (!listOrgs) {
        for (const repo of this.#orgRepos.get(org) ?? []) add(repo);
        continue;
      }
      try {
        const listed = await github.listRepositories(scope.org);
        this.#orgRepos.set(org, listed);
        for (const repo of listed) add(repo);
      } catch (error) {
        this.#log.warn("Cannot list the repositories of {org}: {error}", {
          org: scope.org,
          error: errorText(error),
        });
      }
    }
    // Jobs an enterprise's delivery brought, of repositories no scope
    // polls: listing them is how their lost deliveries are found.
    for (const job of this.core.jobs()) if (job.forge === undefined) add(job);
    return [...repos.values()];
  }

  async #pollRepo(repo: RepoRef): Promise<void> {
    const startedAt = Date.now();
    const jobs = await this.#forges.github!.listActiveJobs(
      repo,
      new Date(startedAt - POLL_WINDOW),
    );
    // Webhooks tell of every change first; these were missed.
    this.#logChanges(
      this.core.pollFinished(repo, jobs, startedAt, Date.now()),
    );
  }

  /**
   * Runs a quick poll round now, as its timer would; resolves with what
   * it cost (304 answers count against no rate limit).
   */
  async pollQueued(): Promise<{ requests: number; notModified: number }> {
    await this.#quickPoller.run();
    return this.#lastQuickRound;
  }

  /**
   * One round of the quick poll: each repository's queued and in-progress
   * runs and their jobs, with conditional requests. Only the jobs of the
   * listings that changed come back, each reported on its own as a
   * webhook's would be: a listing of some runs must not drop the jobs it
   * did not cover (that is the full poll's). Off while its interval is
   * not shorter than the full poll's.
   */
  async #pollQueued(): Promise<void> {
    const github = this.#forges.github;
    const full = this.core.config.github?.pollingInterval ??
      DEFAULT_POLLING_INTERVAL;
    this.#lastQuickRound = { requests: 0, notModified: 0 };
    if (
      github === undefined || this.#scaleSets() ||
      this.#quickInterval() >= full
    ) return;
    const startedAt = Date.now();
    const round = { requests: 0, notModified: 0 };
    const repos = await this.#pollTargets(false);
    await inTurns(repos, QUICK_POLL_CONCURRENCY, async (repo) => {
      if (this.#stopped) return;
      const key = `${repo.owner}/${repo.repo}`.toLowerCase();
      const listedAt = Date.now();
      try {
        const listing = await github.listJobChanges(repo);
        round.requests += listing.requests;
        round.notModified += listing.notModified;
        if (this.#quickFailing.delete(key)) {
          this.#log.info("The quick poll lists {owner}/{repo} again", {
            owner: repo.owner,
            repo: repo.repo,
          });
        }
        this.#logChanges(
          this.core.jobsListed(listing.jobs, listedAt, Date.now()),
        );
      } catch (error) {
        const message = "Cannot quick-poll jobs of {owner}/{repo}: {error}";
        const fields = {
          owner: repo.owner,
          repo: repo.repo,
          error: errorText(error),
        };
        if (this.#quickFailing.has(key)) this.#log.debug(message, fields);
        else {
          this.#quickFailing.add(key);
          this.#log.warn(message, fields);
        }
      }
    });
    const counted = round.requests - round.notModified;
    this.#quickPacer.roundEnded({
      startedAt,
      endedAt: Date.now(),
      requests: round.requests,
      counted,
    });
    this.#lastQuickRound = round;
    this.#log.debug(
      "Quick poll: {requests} requests, {counted} counted against the " +
        "rate limit",
      { requests: round.requests, counted },
    );
    this.wake();
  }

  #quickInterval(): number {
    return this.core.config.github?.queuedPollingInterval ??
      DEFAULT_QUEUED_POLLING_INTERVAL;
  }

  /**
   * Asks GitHub for a job whose delivery contradicted itself (`queued`
   * for a job `waiting` for approval), once the delivery is answered, and
   * reports what GitHub says: a job released from its gate gets its
   * machine without waiting for a poll. One check per job at a time.
   */
  #checkJob(report: JobReport, disagreement: string): void {
    const github = this.#forges.github;
    if (
      github === undefined || this.#stopped || this.#jobChecks.has(report.id)
    ) return;
    const fields = { id: report.id, owner: report.owner, repo: report.repo };
    const startedAt = Date.now();
    const check = Promise.resolve().then(async () => {
      try {
        const job = await github.getJob(report, report.id);
        const tracked = this.core.jobs().find((known) =>
          known.forge === undefined && known.id === report.id
        );
        // A delivery that changed the job's status during the check is
        // newer than its answer (one that said the same again is not).
        if (tracked !== undefined && tracked.since > startedAt) return;
        const change = this.core.jobReported(job, Date.now());
        this.#log.info(
          "Job {id} of {owner}/{repo}: its delivery said {disagreement}; " +
            "GitHub says {status} ({change})",
          { ...fields, disagreement, status: job.status, change: change.kind },
        );
        if (change.kind !== "none") this.wake();
      } catch (error) {
        this.#log.warn("Cannot check job {id} of {owner}/{repo}: {error}", {
          ...fields,
          error: errorText(error),
        });
      } finally {
        this.#jobChecks.delete(report.id);
      }
    });
    this.#jobChecks.set(report.id, check);
  }

  #logChanges(changes: readonly JobChange[]): void {
    for (const change of changes) {
      if (change.kind === "none") continue;
      const { job } = change;
      this.#log.info(
        "Job {id} of {owner}/{repo}: {status}, {change} by the poller",
        {
          id: job.id,
          owner: job.forge === undefined
            ? job.owner
            : `${job.forge}:${job.owner}`,
          repo: job.repo,
          status: change.kind === "dropped" ? "gone" : job.status,
          change: change.kind === "added" ? "found" : change.kind,
        },
      );
    }
  }

  /** Runner states to the core; leftover runners deleted. */
  janitor(): Promise<void> {
    return this.#janitor.run();
  }

  /** Every scope's runners, each scope on its own: one that fails is logged. */
  async #janitorRound(): Promise<void> {
    for (const { scope } of this.core.config.scopes) {
      // A scope of a forge that a reload added waits for the restart (the
      // reload said so); its runners are nobody's to list meanwhile.
      if (!hasForge(this.#forges, scope)) continue;
      try {
        const runners = await forgeOfScope(this.#forges, scope).listRunners(
          scope,
        );
        await this.#deleteRecovered(scope, runners);
        this.#execute(this.core.runnersListed(scope, runners, Date.now()));
      } catch (error) {
        this.#log.warn("Cannot list runners of {scope}: {error}", {
          scope: describeScope(scope),
          error: errorText(error),
        });
      }
    }
    this.wake();
  }

  /**
   * Runners whose VMs an earlier Forrest left (and recovery stopped) are
   * ours and dead, online or not. GitHub refuses to delete a runner that
   * is still busy; the next round tries again.
   */
  async #deleteRecovered(scope: Scope, runners: readonly RunnerReport[]) {
    for (const runner of runners) {
      const key = runner.name.toLowerCase();
      const owner = this.#recoveredRunners.get(key);
      if (!owner || scopeKey(owner) !== scopeKey(scope)) continue;
      try {
        await forgeOfScope(this.#forges, scope).deleteRunner(scope, runner.id);
        this.#recoveredRunners.delete(key);
        this.#log.info("Deleted runner {runner} of an earlier Forrest", {
          runner: runner.name,
        });
      } catch (error) {
        this.#log.warn("Cannot delete runner {runner} yet: {error}", {
          runner: runner.name,
          error: errorText(error),
        });
      }
    }
  }

  /** Plans again soon (in this turn of the event loop, after the caller). */
  wake(): void {
    this.#wakeAt(Date.now());
  }

  #wakeAt(at: number): void {
    if (this.#stopped) return;
    if (at >= this.#tickAt) return;
    clearTimeout(this.#tickTimer);
    this.#tickAt = at;
    this.#tickTimer = setTimeout(
      () => this.#tick(),
      Math.max(0, at - Date.now()),
    );
  }

  #tick(): void {
    this.#tickAt = Infinity;
    this.#tickTimer = undefined;
    const now = Date.now();
    this.#execute(this.core.tick(now));
    const observations = this.core.drainObservations();
    observations.pickup.forEach((s) => this.metrics.pickup.observe(s));
    observations.boot.forEach((s) => this.metrics.boot.observe(s));
    const next = this.core.nextWake(now);
    if (next !== undefined) this.#wakeAt(next);
  }

  #execute(decisions: readonly Decision[]): void {
    for (const decision of decisions) this.#executor.execute(decision);
  }

  /**
   * The images under base_dir, listed at most every 30 s (each listing
   * reads every image's build record); undefined until the first is done.
   */
  async images(): Promise<ImageEntry[] | undefined> {
    const now = Date.now();
    if (this.#imagesAt + IMAGES_TTL <= now) {
      this.#imagesAt = now;
      this.#imagesListing = listImages(
        this.core.config.host.baseDir,
        this.core.config,
      ).then((images) => this.#images = images).catch((error) => {
        this.#log.warn("Cannot list the images: {error}", {
          error: errorText(error),
        });
        return this.#images;
      });
    }
    // A first listing is waited for; later ones are not (the old one shows).
    return this.#images ?? await this.#imagesListing;
  }

  /** The tail of a live machine's boot log, secrets blanked (the dashboard). */
  logTail(runner: string, bytes = 16 * 1024): Promise<string | undefined> {
    return this.#executor.logTail(runner, bytes);
  }

  /** Aborted once stop() is done: streams of the API end then. */
  get stopped(): AbortSignal {
    return this.#stoppedSignal.signal;
  }

  /** An error the API could not answer for; logged, never sent. */
  logError(error: unknown): void {
    this.#log.error("API: {error}", { error: errorText(error) });
  }

  status(): Status {
    return this.core.status();
  }

  metricsText(): string {
    return this.metrics.render(this.core.status());
  }

  /**
   * Stops gracefully: no more polls, janitor rounds or new machines;
   * machines without a job are killed (runners deleted, VMs powered down);
   * running jobs may finish for `timeoutMs` (persisting as usual), then
   * they are stopped too, through the QMP ladder. `hurry` (a second
   * signal) ends the wait at once. Resolves when every machine is gone.
   */
  async stop(
    timeoutMs = 0,
    hurry: AbortSignal = AbortSignal.abort(),
  ): Promise<void> {
    this.#stopped = true;
    // First: no more jobs are assigned to this host once its sessions end.
    const listeners = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(listeners.map((listener) => listener.stop()));
    const rounds = Promise.all([
      this.#poller.stop(),
      this.#quickPoller.stop(),
      ...this.#jobChecks.values(),
      this.#janitor.stop(),
      this.#imageCheck.stop(),
      ...[...this.#forgejoPollers.values()].map((poller) => poller.stop()),
    ]);
    clearTimeout(this.#tickTimer);
    this.#execute(this.core.shutdown(Date.now()));
    const running = this.core.machines().filter((m) => m.state === "running");
    if (running.length > 0 && timeoutMs > 0 && !hurry.aborted) {
      this.#log.info(
        "Waiting up to {seconds} s for {count} running job(s) to finish " +
          "(signal again to stop them now)",
        { seconds: Math.round(timeoutMs / 1000), count: running.length },
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hurried = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        hurry.addEventListener("abort", () => resolve(), { once: true });
      });
      await Promise.race([this.#executor.settled(), hurried]);
      clearTimeout(timer);
    }
    const left = this.core.killAll(Date.now());
    if (left.length > 0) {
      this.#log.warn("Stopping {count} machine(s) that still run a job", {
        count: left.length,
      });
    }
    this.#execute(left);
    await this.#executor.settled();
    await rounds;
    clearTimeout(this.#tickTimer);
    this.#tickTimer = undefined;
    this.#stoppedSignal.abort();
  }

  /**
   * Uploads that a crash cut off left temporary files in the stores of the
   * runs it left; no upload runs yet, so they can go.
   */
  async #sweepUploads(recovered: readonly RecoveredRun[]): Promise<void> {
    const folders = new Set<string>();
    for (const run of recovered) {
      const machine = allMachines(this.core.config).find((m) =>
        tripletName(m.triplet).toLowerCase() ===
          tripletName(run.triplet).toLowerCase()
      );
      for (const store of machine?.artifacts ?? []) {
        folders.add(storeFolder(store.path, run.runner));
      }
    }
    for (const folder of folders) {
      try {
        const removed = await sweepUploads(folder);
        if (removed > 0) {
          this.#log.info(
            "Removed {count} upload(s) a crash cut off in {folder}",
            { count: removed, folder },
          );
        }
      } catch (error) {
        this.#log.warn("Cannot sweep {folder}: {error}", {
          folder,
          error: errorText(error),
        });
      }
    }
  }
}

/** A scale set's listener stays while its type, name, group and labels do. */
function listenerKey(machine: MachineConfig): string {
  return JSON.stringify([
    tripletName(machine.triplet).toLowerCase(),
    machine.scaleSet,
    machine.runnerGroup,
    runnerLabels(machine),
  ]);
}

/** One janitor for every forge: the shortest interval configured. */
function janitorInterval(config: Config): number {
  const intervals = [
    ...(config.github ? [config.github.janitorInterval] : []),
    ...config.forgejo.map((f) => f.janitorInterval),
  ];
  return intervals.length ? Math.min(...intervals) : DEFAULT_JANITOR_INTERVAL;
}

/** What the scopes of one forge (GitHub when undefined) need of it. */
function needsOf(config: Config, forge: string | undefined): ScopeNeeds[] {
  return scopeNeeds(config).filter((n) => forgeOf(n.scope) === forge);
}

/** What each configured scope needs of the forge: its runner groups. */
export function scopeNeeds(config: Config): ScopeNeeds[] {
  return config.scopes.map((entry) => ({
    scope: entry.scope,
    runnerGroups: [
      ...new Set(entry.machines.flatMap((m) => m.runnerGroup ?? [])),
    ],
    defaultGroup: entry.machines.some((m) => m.runnerGroup === undefined),
    repositories: entry.repositories,
    packageToken: entry.packageToken,
  }));
}

/**
 * Repositories the quick poll lists at once: a round of 100 takes a
 * quarter of the time one by one would (GitHub answers in 100–300 ms),
 * far from GitHub's 100 concurrent requests; the pacer keeps the rate.
 */
const QUICK_POLL_CONCURRENCY = 4;

/** `work` for each item, at most `concurrency` at a time. */
async function inTurns<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, worker),
  );
}
