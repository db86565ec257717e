/**
 * The latest state of one Pod, pushed by a watch (re-opened when the API closes it) and read again
 * every few seconds as a backstop, so that a run waits on the Pod's events and not on a poll.
 */
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { KubeClient } from "./client.js";

const BACKSTOP_MS = 2000;

export class PodWatch {
  private pod?: V1Pod;
  private readonly waiters = new Set<() => void>();
  private abort?: { abort(): void };
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** The Pod was deleted (or never seen again after it was). */
  gone = false;

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
  ) {
    void this.open();
    this.timer = setInterval(() => void this.refresh(), BACKSTOP_MS);
    this.timer.unref();
  }

  get current(): V1Pod | undefined {
    return this.pod;
  }

  private update(pod: V1Pod | undefined, deleted = false): void {
    if (pod) this.pod = pod;
    if (deleted) this.gone = true;
    for (const w of [...this.waiters]) w();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    try {
      this.abort = await this.client.watch.watch(
        `/api/v1/namespaces/${this.namespace}/pods`,
        { fieldSelector: `metadata.name=${this.name}` },
        (type: string, pod: V1Pod) => this.update(pod, type === "DELETED"),
        () => {
          if (!this.closed) setTimeout(() => void this.open(), 100).unref();
        },
      );
    } catch {
      if (!this.closed) setTimeout(() => void this.open(), 500).unref();
    }
  }

  private async refresh(): Promise<void> {
    try {
      this.update(await this.client.core.readNamespacedPod({ namespace: this.namespace, name: this.name }));
    } catch (err) {
      if ((err as { code?: number }).code === 404) this.update(undefined, true);
    }
  }

  /** Resolves with the Pod once `test` holds (checked on every change), or with undefined after `timeoutMs`. */
  until<T>(test: (pod: V1Pod) => T | undefined, timeoutMs: number, stop?: Promise<unknown>): Promise<T | undefined> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        const value = this.pod ? test(this.pod) : undefined;
        if (value !== undefined || this.gone) done(value);
      };
      const done = (value: T | undefined) => {
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      timer = setTimeout(() => done(undefined), timeoutMs);
      void stop?.then(
        () => done(undefined),
        () => done(undefined),
      );
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.abort?.abort();
    for (const w of [...this.waiters]) w();
  }
}

export function containerStatus(pod: V1Pod, name: string, init = false): V1ContainerStatus | undefined {
  return (init ? pod.status?.initContainerStatuses : pod.status?.containerStatuses)?.find((c) => c.name === name);
}

/** Why a Pod cannot start, in the words of its status (an image missing on the node, a forbidden sysctl, ...), or undefined. */
export function podStartProblem(pod: V1Pod): string | undefined {
  if (pod.status?.phase === "Failed" && pod.status.reason)
    return `${pod.status.reason}: ${pod.status.message ?? ""}`.trim();
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const reason = s.state?.waiting?.reason;
    if (
      reason &&
      /ErrImageNeverPull|ImagePullBackOff|ErrImagePull|CreateContainerConfigError|CreateContainerError|InvalidImageName|RunContainerError/.test(
        reason,
      )
    ) {
      return `${s.name}: ${reason}: ${s.state?.waiting?.message ?? ""}`.trim();
    }
  }
  const unschedulable = pod.status?.conditions?.find(
    (c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable",
  );
  if (unschedulable) return `Unschedulable: ${unschedulable.message ?? ""}`;
  return undefined;
}
