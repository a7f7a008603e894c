/**
 * The one place where the order of a request lives. Read top to bottom, a generation request goes:
 *
 *   1. admission        rules that reject (a typed error) or name the caller          proxy/admission.ts
 *   2. routing          files named: their endpoint; Responses: the conversation's    surface/file_route.ts,
 *                       owner                                                         responses/layer.ts
 *   3. cache lookup     HIT, COALESCED with an identical request, or a miss ticket     cache/cache.ts
 *   4. plan             the endpoints to try, in order (the balancer)                  balancer/balancer.ts
 *   5. attempts         upstream call, classify, health, fail over                     proxy/attempts.ts
 *   6. record           usage (budgets, sinks), cache write, the Responses turn        proxy/usage.ts, cache/ticket.ts
 *   7. answer           a typed `Answer`, made a Response once by the HTTP edge        http/respond.ts
 *
 * A Responses request whose owner cannot serve is replayed elsewhere: stages 3-6 again with the replayed body.
 * `/responses/{id}` calls take the same road: admission, the owner (routing), a one-endpoint plan, the same
 * attempts, and a record that forgets deleted responses. Each stage returns what it decided; nothing is written
 * onto the request or into headers for a later stage to read back, and nothing downstream calls back up.
 */

import type { Balancer } from "../balancer/balancer.ts";
import type { EndpointConfig, GroupConfig, Settings } from "../config/config.ts";
import type { Answer } from "../core/answer.ts";
import type { Admitted, GenerationRequest, Identity, ItemRequest, RelayRequest } from "../core/request.ts";
import type { CacheLookup, ResponseCache } from "../cache/cache.ts";
import type { HealthTracker } from "../health/tracker.ts";
import type { ProxyMetrics, RequestTrace } from "../metrics/metrics.ts";
import type { Budgets } from "../ratelimit/budget.ts";
import type { Conversation, ResponsesLayer } from "../responses/layer.ts";
import { fileRefs } from "../keys/file_refs.ts";
import type { FilePin, FileRouting } from "../surface/file_route.ts";
import { type AdmissionRule, admit } from "./admission.ts";
import type { Attempts } from "./attempts.ts";
import type { Served, UpstreamCall } from "./call.ts";
import { OwnerPlan, type Plan, ResendPlan } from "./plan.ts";
import { recordCachedUsage, recordUsage, type UsageSink } from "./usage.ts";
import { generationCall, itemCall } from "./upstream_calls.ts";
import { answerCaller, failCaller } from "./caller.ts";

export interface PipelineDeps {
  readonly settings: Settings;
  /** Admission rules, run in order before anything else (see `admission.ts`). */
  readonly admission: readonly AdmissionRule[];
  readonly responses: ResponsesLayer;
  /** Requests naming files go to the endpoint that holds them. */
  readonly files: FileRouting;
  readonly cache: ResponseCache;
  readonly balancer: Balancer;
  /** rpm/tpm budgets: estimated before the call (charged by the plan), corrected from `usage` when recorded. */
  readonly budgets: Budgets;
  readonly attempts: Attempts;
  readonly health: HealthTracker;
  /** Told the usage of every upstream answer (record stage). */
  readonly usage: readonly UsageSink[];
  /** Every configured endpoint by id: the owners of stored responses. */
  readonly endpoints: ReadonlyMap<string, EndpointConfig>;
  readonly metrics?: ProxyMetrics;
}

type Generation = Admitted<GenerationRequest>;

export class Pipeline {
  readonly #deps: PipelineDeps;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
  }

  /**
   * A generation request (chat completions, responses, embeddings), from admission to its answer. Not async: a
   * request admitted at once by rules that name no caller goes on to stage 2 without a frame of its own here.
   */
  generate(incoming: GenerationRequest): Promise<Answer> {
    let admitted: Generation | Promise<Generation>;
    try {
      admitted = admit(this.#deps.admission, incoming); // 1. admission
    } catch (error) {
      return Promise.reject(error);
    }
    if (admitted instanceof Promise) return admitted.then((request) => this.#afterAdmission(request));
    return this.#afterAdmission(admitted);
  }

  /** Stages 2 to 7 of an admitted generation request; the caller's headers and finish when admission named one. */
  #afterAdmission(request: Generation): Promise<Answer> {
    const identity = request.identity;
    if (!identity?.pending && !identity?.finish) return this.#generate(request);
    return this.#forCaller(request, identity);
  }

  async #forCaller(request: Generation, identity: Identity): Promise<Answer> {
    try {
      return await answerCaller(identity, await this.#generate(request)); // the caller's headers, its finish
    } catch (error) {
      throw await failCaller(identity, error);
    }
  }

  /** Stages 2 to 7 of a generation request (no frame of its own for chats and embeddings). */
  #generate(request: Generation): Promise<Answer> {
    const refs = request.route === "embeddings" ? [] : fileRefs(request.body);
    if (refs.length > 0) {
      return this.#deps.files.route(request, refs).then((pin) => this.#pinned(request, pin));
    }
    return this.#pinned(request, undefined);
  }

  /** Stages 3 to 7, at the endpoint that holds the files the request names (2. routing: `pin`), if any. */
  #pinned(request: Generation, pin: FilePin | undefined): Promise<Answer> {
    return request.route === "responses" ? this.#respond(request, pin) : this.#serve(request, null, pin);
  }

  /** Stages 2 to 7 of a Responses request. */
  async #respond(request: Generation, pin?: FilePin): Promise<Answer> {
    const { responses } = this.#deps;
    const conversation = await responses.route(request); // 2. Responses routing
    if (pin && conversation.pinned !== undefined) pin = this.#deps.files.withOwner(pin, conversation.pinned);
    try {
      return await this.#serve(request, conversation, pin);
    } catch (error) {
      if (pin) throw error; // nowhere else holds its files
      const replay = await responses.reroute(request, conversation, error); // rethrows unless it may move
      return await this.#serve({ ...request, body: replay.request.body }, replay.conversation);
    }
  }

  /** `/responses/{id}` (GET, DELETE, `input_items`, `cancel`), from admission to its answer. */
  async item(incoming: ItemRequest): Promise<Answer> {
    const request = await admit(this.#deps.admission, incoming); // 1. admission
    const { responses, attempts, endpoints, health, balancer } = this.#deps;
    const owner = await responses.owner(request, endpoints); // 2. routing: the owner, or a 404
    const plan = new OwnerPlan(owner, request.responseId, health, balancer.load); // 4. plan: the owner alone
    const { answer } = await attempts.run(itemCall(request), plan); // 5. attempts
    await responses.recordItem(request, answer); // 6. record
    return answer; // 7. answer
  }

  /**
   * Files, batches, audio, images and moderations: admission, the plan (the group's endpoints, or the one that
   * holds the object), the same attempts as generation; no cache, no Responses routing. `call` is the upstream call
   * the route builds (its body, how its answer is read).
   */
  async relay(incoming: RelayRequest, call: UpstreamCall): Promise<Served> {
    const request = await admit(this.#deps.admission, incoming); // 1. admission
    const identity = request.identity;
    if (!identity?.pending && !identity?.finish) return await this.#relay(request, call);
    try {
      await identity.pending; // the key's limits pass before anything goes upstream
      const served = await this.#relay(request, call);
      return { ...served, answer: await answerCaller(identity, served.answer) };
    } catch (error) {
      throw await failCaller(identity, error);
    }
  }

  /** Stages 4 to 6 of a relay request. */
  async #relay(request: Admitted<RelayRequest>, call: UpstreamCall): Promise<Served> {
    const { settings, balancer, health, attempts } = this.#deps;
    const { target } = request;
    const plan: Plan = target.kind === "holder" // 4. plan
      ? new OwnerPlan(target.endpoint, target.id, health, balancer.load, target.what)
      : balancer.plan(request.group, {
        maxAttempts: settings.numRetries + 1,
        maxWaitMs: settings.maxWaitForCapacityMs,
        signal: request.signal,
        exclude: target.exclude,
        onWait: (ms) => this.#waiting(request, ms),
      });
    const { unresendable, record } = request;
    const served = await attempts.run(call, unresendable ? new ResendPlan(plan, unresendable) : plan); // 5.
    // 6. record: the route's own (usage of audio, images, moderations)
    return record
      ? { ...served, answer: record(served.answer, served.pick.endpoint.id, request.identity) }
      : served;
  }

  /** Stages 3 to 7 of a generation request. */
  async #serve(request: Generation, conversation: Conversation | null, pin?: FilePin): Promise<Answer> {
    let lookup = this.#deps.cache.lookup(request); // 3. cache lookup (with the cache off: at once)
    if (lookup instanceof Promise) lookup = await lookup;
    if (request.identity?.pending) lookup = await this.#admitted(request, lookup, request.identity.pending);
    if (lookup.kind === "answer") {
      const answer = recordCachedUsage(request, lookup.answer, this.#deps.usage); // 6. record: what it saved
      // 6. record: the Responses turn (a hit refreshes the owner its response id needs)
      return conversation ? await this.#deps.responses.record(request, conversation, answer) : answer;
    }
    let served: Served;
    try {
      const plan = pin // 4. plan: the files' endpoint alone, whatever its health, or the balancer's
        ? this.#filePlan(request, pin)
        : this.#plan(request, conversation, lookup);
      const call = generationCall(request, lookup.signal); // a promise only for a big body
      served = await this.#deps.attempts.run(call instanceof Promise ? await call : call, plan); // 5. attempts
    } catch (error) {
      lookup.ticket.drop();
      throw error;
    }
    const { budgets, usage } = this.#deps;
    const answer = lookup.ticket.keep(recordUsage(request, served, budgets, usage)); // 6. record: usage, cache
    // 6. record: the Responses turn; 7. answer
    return conversation ? await this.#deps.responses.record(request, conversation, answer) : answer;
  }

  /**
   * Admission's checks still in flight (their store call went out with the lookup's) must pass before anything is
   * served: a rejection drops the lookup's flight. A miss's health read is started first, in the same round trip.
   */
  async #admitted(request: Generation, lookup: CacheLookup, pending: Promise<unknown>): Promise<CacheLookup> {
    const miss = lookup.kind === "miss";
    const health = miss ? lookup.health ?? this.#deps.health.prefetch(request.group.endpoints) : undefined;
    try {
      await pending;
    } catch (error) {
      health?.catch(() => {});
      if (miss) lookup.ticket.drop();
      throw error;
    }
    return miss ? { ...lookup, health } : lookup;
  }

  /** The plan stage: the balancer's choice of endpoints for the request's group. */
  #plan(
    request: Generation,
    conversation: Conversation | null,
    lookup: CacheLookup & { kind: "miss" },
  ): Plan {
    const { settings, balancer, budgets } = this.#deps;
    return balancer.plan(request.group, {
      maxAttempts: settings.numRetries + 1,
      maxWaitMs: settings.maxWaitForCapacityMs,
      signal: lookup.signal,
      tokens: budgets.estimate(request.group, request.route, request.body),
      pinned: conversation?.pinned,
      exclude: conversation?.exclude,
      onWait: (ms) => this.#waiting(request, ms),
      health: lookup.health,
    });
  }

  /** The plan stage of a request naming files: their endpoint alone, charged to its rpm/tpm budget. */
  #filePlan(request: Generation, pin: FilePin): Plan {
    const { health, balancer, budgets } = this.#deps;
    const tokens = budgets.estimate(request.group, request.route, request.body);
    return new OwnerPlan(pin.endpoint, pin.fileId, health, balancer.load, "file", { budgets, tokens });
  }

  #waiting(request: { readonly group: GroupConfig; readonly trace?: RequestTrace }, ms: number): void {
    if (request.trace) request.trace.waitMs += ms;
    this.#deps.metrics?.capacityWait(request.group.name, ms / 1000);
  }
}
