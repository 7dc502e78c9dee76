// xterm.js and its stylesheet, in a chunk of their own: loaded by the
// first terminal opened.
import "@xterm/xterm/css/xterm.css";

export { Terminal } from "@xterm/xterm";
export { FitAddon } from "@xterm/addon-fit";
