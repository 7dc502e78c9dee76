// What the page knows of the engine: the container list and each
// container's inspect, kept current by the engine's events (no reload).

import { type Container, getJson, jsonLines, stream } from "./api";

export interface Inspect {
  Id: string;
  Name: string;
  RestartCount?: number;
  State?: {
    Status?: string;
    StartedAt?: string;
    FinishedAt?: string;
    ExitCode?: number;
    Health?: { Status?: string };
  };
  Config?: { Image?: string; Tty?: boolean; Labels?: Record<string, string> };
  [key: string]: unknown;
}

export interface EngineEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
}

type Listener = () => void;

export class Store {
  containers: Container[] = [];
  inspects = new Map<string, Inspect>();
  connected = false;
  private listeners = new Set<Listener>();
  private eventListeners = new Set<(e: EngineEvent) => void>();
  private refreshTimer = 0;
  private stale = new Set<string>();
  /// Containers the page itself stopped, restarted or removed lately:
  /// their exits are expected.
  expected = new Map<string, number>();

  onChange(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onEvent(l: (e: EngineEvent) => void): () => void {
    this.eventListeners.add(l);
    return () => this.eventListeners.delete(l);
  }

  private changed() {
    for (const l of this.listeners) l();
  }

  async refresh(): Promise<void> {
    const list = await getJson<Container[]>("containers", "list the containers");
    const fresh = list.filter((c) => !this.inspects.has(c.Id) || this.stale.has(c.Id));
    this.stale.clear();
    // The list is drawn at once; what only inspect tells (restarts, the
    // start time) follows.
    this.containers = list;
    this.changed();
    if (!fresh.length) return;
    let retry = false;
    await Promise.all(
      fresh.map(async (c) => {
        try {
          this.inspects.set(c.Id, await getJson<Inspect>(`containers/${c.Id}`, `inspect ${c.Id}`));
        } catch {
          // Removed in between (the next list drops it), or the engine
          // was busy: asked again with the next list.
          this.stale.add(c.Id);
          retry = true;
        }
      }),
    );
    if (retry) this.later();
    const ids = new Set(list.map((c) => c.Id));
    for (const id of this.inspects.keys()) if (!ids.has(id)) this.inspects.delete(id);
    this.containers = list;
    this.changed();
  }

  /// Another refresh soon; several events in a burst make one.
  private later(id?: string) {
    if (id) this.stale.add(id);
    if (this.refreshTimer) return;
    this.refreshTimer = window.setTimeout(() => {
      this.refreshTimer = 0;
      this.refresh().catch(() => this.later());
    }, 100);
  }

  expect(id: string) {
    this.expected.set(id, Date.now());
  }

  /// Follows the engine's events for as long as the page lives,
  /// reconnecting (and catching up with a fresh list) when the stream ends.
  async follow(): Promise<void> {
    for (;;) {
      try {
        await this.refresh();
        const ctrl = new AbortController();
        this.setConnected(true);
        await stream(
          "events",
          "follow the engine's events",
          ctrl.signal,
          jsonLines<EngineEvent>((e) => {
            const id = e.Actor?.ID ?? e.id;
            this.later(id);
            for (const l of this.eventListeners) l(e);
          }),
          // What changed between the list above and the stream's start
          // (a health check turning healthy, say) comes with no event:
          // list again once the stream is open.
          () => this.later(),
        );
      } catch {
        // the engine went away or the stream broke: try again
      }
      this.setConnected(false);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private setConnected(v: boolean) {
    this.connected = v;
    const live = document.getElementById("live");
    if (live) {
      live.textContent = v ? "live" : "reconnecting";
      live.classList.toggle("ok", v);
    }
  }
}

export const store = new Store();
