// A confirmation for destructive actions: a modal <dialog>, keyboard
// usable (Escape cancels, the safe button has the focus).

import { el } from "./util";

export function confirmAction(title: string, text: string, verb: string): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = el("button", { type: "button", value: "cancel" }, "Cancel");
    const ok = el("button", { type: "button", class: "danger", value: "ok", "data-confirm": "ok" }, verb);
    const d = el(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      el("h2", { id: "confirm-title" }, title),
      el("p", {}, text),
      el("div", { class: "buttons" }, cancel, ok),
    );
    const done = (v: boolean) => {
      d.close();
      d.remove();
      resolve(v);
    };
    cancel.addEventListener("click", () => done(false));
    ok.addEventListener("click", () => done(true));
    d.addEventListener("cancel", () => done(false));
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}
