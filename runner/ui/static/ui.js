// runner web UI: live rows, log follow and the compare selection. No library, no build.
"use strict";

function refreshRuns(table) {
  // Re-render the rows on the server while any shown run is live; keep the ticked boxes.
  const url = table.dataset.fragment;
  const tick = async () => {
    const ticked = new Set(Array.from(table.querySelectorAll("input[name=run]:checked"), (box) => box.value));
    const answer = await fetch(url, { credentials: "same-origin" });
    if (!answer.ok) return;
    const holder = document.createElement("table");
    holder.innerHTML = await answer.text();  // server-rendered and escaped by the templates
    const rows = holder.querySelector("tbody");
    if (!rows) return;
    rows.querySelectorAll("input[name=run]").forEach((box) => { box.checked = ticked.has(box.value); });
    table.querySelector("tbody").replaceWith(rows);
    countSelected();
    if (rows.querySelector("[data-status=RUNNING], [data-status=SCHEDULED]")) setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

function followLog(log) {
  // Append what the run wrote since the last read, as text; stop once the run has ended.
  let offset = Number(log.dataset.offset);
  const poll = async () => {
    const answer = await fetch(`${log.dataset.url}?offset=${offset}`, { credentials: "same-origin" });
    if (!answer.ok) { setTimeout(poll, 3000); return; }
    const found = await answer.json();
    if (found.text) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(document.createTextNode(found.text));
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    offset = found.offset;
    const badge = document.querySelector("#run-status .status");
    if (badge && badge.dataset.status !== found.status) {
      badge.dataset.status = found.status;
      badge.className = `status status-${found.status.toLowerCase()}`;
      badge.textContent = found.status;
    }
    if (found.done) {
      const note = document.getElementById("follow-note");
      if (note) note.textContent = `The run ended: ${found.status}. Reload for its final metrics.`;
      return;
    }
    setTimeout(poll, found.text ? 300 : 1000);
  };
  setTimeout(poll, 1000);
}

function countSelected() {
  const count = document.getElementById("compare-count");
  const button = document.getElementById("compare-button");
  if (!count || !button) return;
  const ticked = document.querySelectorAll("input[name=run][form=compare-form]:checked").length;
  count.textContent = ticked ? `${ticked} selected` : "select two or more runs";
  button.disabled = ticked < 2;
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("runs-table");
  if (table) {
    table.addEventListener("change", countSelected);
    countSelected();
    if (table.dataset.live === "yes") refreshRuns(table);
  }
  const log = document.getElementById("log");
  if (log && log.dataset.follow === "yes") followLog(log);
});
