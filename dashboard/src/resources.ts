// Images, volumes and networks with their sizes and users, and removal of
// the unused ones.

import { act, getJson } from "./api";
import { confirmAction } from "./confirm";
import { store } from "./state";
import { bytes, el, toast } from "./util";

interface Image {
  Id: string;
  RepoTags?: string[] | null;
  Size?: number;
  Containers?: number;
  Created?: number;
}
interface Volume {
  Name: string;
  Driver?: string;
  Labels?: Record<string, string> | null;
  UsageData?: { Size?: number; RefCount?: number };
}
interface Network {
  Id: string;
  Name: string;
  Driver?: string;
  Labels?: Record<string, string> | null;
  IPAM?: { Config?: { Subnet?: string }[] | null };
}
interface Df {
  Images?: Image[] | null;
  Volumes?: Volume[] | null;
}

const BUILTIN_NETWORKS = new Set(["bridge", "host", "none"]);

interface Row {
  key: string;
  cells: (string | Node)[];
  users: string[];
  remove?: { path: string; what: string };
}

function section(title: string, kind: string, head: string[], rows: Row[], reload: () => void): HTMLElement {
  const unused = rows.filter((r) => !r.users.length && r.remove);
  const removeAll = async (list: Row[]) => {
    if (!list.length) return;
    const ok = await confirmAction(
      `Remove ${list.length} unused ${kind}?`,
      list.map((r) => r.key).join(", "),
      "Remove",
    );
    if (!ok) return;
    const results = await Promise.allSettled(
      list.map((r) => act("DELETE", r.remove?.path ?? "", r.remove?.what ?? r.key)),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length) toast(failed.map((f) => String(f.reason?.message ?? f.reason)).join("\n"));
    reload();
  };
  return el(
    "section",
    { class: "resources", "data-kind": kind, "aria-label": title },
    el(
      "h2",
      {},
      title,
      " ",
      el("small", {}, `${rows.length}, ${unused.length} unused`),
      el(
        "button",
        { type: "button", class: "danger", disabled: !unused.length, "data-action": "prune", onclick: () => void removeAll(unused) },
        `Remove unused ${kind}`,
      ),
    ),
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)), el("th", { scope: "col" }, "Used by"), el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")))),
      el(
        "tbody",
        {},
        ...rows.map((r) =>
          el(
            "tr",
            { "data-name": r.key, "data-used": r.users.length ? "yes" : "no" },
            ...r.cells.map((c) => el("td", {}, c)),
            el("td", {}, r.users.length ? r.users.join(", ") : el("em", {}, "unused")),
            el(
              "td",
              {},
              r.remove &&
                !r.users.length &&
                el("button", { type: "button", class: "danger", "aria-label": `Remove ${r.key}`, onclick: () => void removeAll([r]) }, "Remove"),
            ),
          ),
        ),
      ),
    ),
  );
}

export function resources(main: HTMLElement): () => void {
  let live = true;
  const load = async () => {
    try {
      const [df, networks] = await Promise.all([
        getJson<Df>("df", "disk usage"),
        getJson<Network[]>("networks", "list the networks"),
        store.refresh(),
      ]);
      if (!live) return;
      const cname = (id: string) => {
        const c = store.containers.find((x) => x.Id === id);
        return c ? (c.Names[0] ?? id).replace(/^\//, "") : id.slice(0, 12);
      };
      const images: Row[] = (df.Images ?? []).map((i) => {
        const users = store.containers.filter((c) => (c as unknown as { ImageID?: string }).ImageID === i.Id).map((c) => cname(c.Id));
        const tags = i.RepoTags?.filter((t) => t !== "<none>:<none>") ?? [];
        return {
          key: tags[0] ?? i.Id.slice(7, 19),
          cells: [tags.join(", ") || "<none>", i.Id.replace(/^sha256:/, "").slice(0, 12), bytes(i.Size)],
          users,
          remove: { path: `images/${encodeURIComponent(i.Id)}`, what: `remove image ${tags[0] ?? i.Id}` },
        };
      });
      const volumes: Row[] = (df.Volumes ?? []).map((v) => {
        const users = store.inspects.size
          ? [...store.inspects.values()]
              .filter((c) => ((c.Mounts as { Name?: string }[] | undefined) ?? []).some((m) => m.Name === v.Name))
              .map((c) => c.Name.replace(/^\//, ""))
          : [];
        const refs = v.UsageData?.RefCount ?? 0;
        return {
          key: v.Name,
          cells: [v.Name, v.Labels?.["servin.project"] ?? "", bytes(v.UsageData?.Size)],
          users: users.length ? users : refs > 0 ? [`${refs} container${refs === 1 ? "" : "s"}`] : [],
          remove: { path: `volumes/${encodeURIComponent(v.Name)}`, what: `remove volume ${v.Name}` },
        };
      });
      const nets: Row[] = networks.map((n) => {
        const users = store.containers
          .filter((c) => Object.keys((c as unknown as { NetworkSettings?: { Networks?: object } }).NetworkSettings?.Networks ?? {}).includes(n.Name))
          .map((c) => cname(c.Id));
        const builtin = BUILTIN_NETWORKS.has(n.Name);
        return {
          key: n.Name,
          cells: [n.Name, n.Driver ?? "", (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter(Boolean).join(", ")],
          users: builtin ? ["built in"] : users,
          remove: builtin ? undefined : { path: `networks/${encodeURIComponent(n.Id)}`, what: `remove network ${n.Name}` },
        };
      });
      main.replaceChildren(
        el("h1", {}, "Images, volumes and networks"),
        section("Images", "images", ["Tags", "ID", "Size"], images, () => void load()),
        section("Volumes", "volumes", ["Name", "Project", "Size"], volumes, () => void load()),
        section("Networks", "networks", ["Name", "Driver", "Subnets"], nets, () => void load()),
      );
    } catch (e) {
      if (live) main.replaceChildren(el("h1", {}, "Images, volumes and networks"), el("p", { class: "error" }, String((e as Error).message)));
    }
  };
  main.replaceChildren(el("p", {}, "Loading…"));
  void load();
  const off = store.onChange(() => void 0);
  return () => {
    live = false;
    off();
  };
}
