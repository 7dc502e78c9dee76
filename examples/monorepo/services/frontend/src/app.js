// __API_URL__ is replaced at build time by the API_URL build argument.
fetch("__API_URL__/")
  .then((r) => r.text())
  .then((t) => { document.getElementById("out").textContent = t; })
  .catch((e) => { document.getElementById("out").textContent = String(e); });
