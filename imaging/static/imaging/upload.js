// Upload page: files, folders (a copied CD) and zips, one request per file so
// that each gets its own progress bar and result. No framework, no build step.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const strings = config.strings;
  const PARALLEL = 3;
  const dropzone = document.getElementById("dropzone");
  const tbody = document.querySelector("#results tbody");
  const resultsCard = document.getElementById("results-card");
  const overall = document.getElementById("overall");
  const overallBar = document.getElementById("overall-bar");
  const overallText = document.getElementById("overall-text");
  const summary = document.getElementById("summary");
  const institution = document.getElementById("institution");

  const queue = [];
  const counts = { stored: 0, duplicate: 0, conflict: 0, rejected: 0, skipped: 0 };
  let totalBytes = 0;
  let sentBytes = 0;
  let totalFiles = 0;
  let doneFiles = 0;
  let active = 0;

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function tag(outcome) {
    const span = document.createElement("span");
    const kind = { stored: "ok", duplicate: "ok", conflict: "warn", skipped: "off-muted", rejected: "bad" }[outcome] || "bad";
    span.className = "tag " + kind;
    span.dataset.outcome = outcome;
    span.textContent = strings[outcome] || outcome;
    return span;
  }

  function addRow(name) {
    const row = document.createElement("tr");
    row.innerHTML = '<td class="name"></td><td><div class="progress"><span></span></div></td><td class="outcome"></td><td class="reason"></td>';
    row.querySelector(".name").textContent = name;
    row.querySelector(".outcome").textContent = strings.waiting;
    tbody.appendChild(row);
    return row;
  }

  function updateOverall() {
    const percent = totalBytes ? Math.round((100 * sentBytes) / totalBytes) : 0;
    overallBar.style.width = percent + "%";
    overallText.textContent = format(strings.progress, {
      done: doneFiles,
      total: totalFiles,
      mb: (sentBytes / 1048576).toFixed(1),
    });
    summary.textContent = format(strings.summary, counts);
  }

  function showResults(row, results) {
    const [first, ...rest] = results;
    if (!first) {
      row.querySelector(".outcome").textContent = "";
      return;
    }
    const fill = (target, result) => {
      target.querySelector(".name").textContent = result.name;
      const cell = target.querySelector(".outcome");
      cell.textContent = "";
      cell.appendChild(tag(result.outcome));
      target.querySelector(".reason").textContent = result.reason || "";
      target.dataset.outcome = result.outcome;
      counts[result.outcome] = (counts[result.outcome] || 0) + 1;
    };
    fill(row, first);
    // A zip answers for every file inside it: one row each, after the zip's row.
    let anchor = row;
    for (const result of rest) {
      const extra = document.createElement("tr");
      extra.innerHTML = '<td class="name"></td><td></td><td class="outcome"></td><td class="reason"></td>';
      fill(extra, result);
      anchor.after(extra);
      anchor = extra;
    }
  }

  function failRow(row, message) {
    const cell = row.querySelector(".outcome");
    cell.textContent = "";
    cell.appendChild(tag("rejected"));
    cell.firstChild.textContent = strings.failed;
    row.querySelector(".reason").textContent = message;
    row.dataset.outcome = "failed";
    counts.rejected += 1;
  }

  function send(item) {
    active += 1;
    const { file, name, row } = item;
    const bar = row.querySelector(".progress span");
    row.querySelector(".outcome").textContent = strings.uploading;
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("relative_path", name);
    if (institution && institution.value) form.append("institution", institution.value);
    const xhr = new XMLHttpRequest();
    let reported = 0;
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      bar.style.width = Math.round((100 * event.loaded) / event.total) + "%";
      const delta = Math.min(event.loaded, file.size) - reported;
      reported += delta;
      sentBytes += delta;
      if (event.loaded >= event.total) row.querySelector(".outcome").textContent = strings.checking;
      updateOverall();
    };
    xhr.onload = () => {
      sentBytes += file.size - reported;
      bar.style.width = "100%";
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (error) {
        body = null;
      }
      if (xhr.status === 200 && body && body.results) {
        showResults(row, body.results);
      } else {
        failRow(row, (body && body.error) || xhr.status + " " + xhr.statusText);
      }
      finish();
    };
    xhr.onerror = () => {
      sentBytes += file.size - reported;
      failRow(row, strings.failed);
      finish();
    };
    xhr.open("POST", config.endpoint);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.send(form);
  }

  function finish() {
    active -= 1;
    doneFiles += 1;
    updateOverall();
    pump();
  }

  function pump() {
    while (active < PARALLEL && queue.length) send(queue.shift());
    if (!active && !queue.length) document.body.dataset.uploadIdle = "true";
  }

  function enqueue(file, name) {
    document.body.dataset.uploadIdle = "false";
    resultsCard.hidden = false;
    overall.hidden = false;
    totalBytes += file.size;
    totalFiles += 1;
    queue.push({ file, name, row: addRow(name) });
  }

  function addFiles(files) {
    for (const file of files) enqueue(file, file.webkitRelativePath || file.name);
    updateOverall();
    pump();
  }

  // Folders dropped on the page: walk them (the browser gives entries, not files).
  function walk(entry, path) {
    return new Promise((resolve) => {
      if (entry.isFile) {
        entry.file(
          (file) => resolve([{ file, name: path + file.name }]),
          () => resolve([])
        );
        return;
      }
      const reader = entry.createReader();
      const found = [];
      const readBatch = () =>
        reader.readEntries(async (entries) => {
          if (!entries.length) {
            resolve(found);
            return;
          }
          for (const child of entries) found.push(...(await walk(child, path + entry.name + "/")));
          readBatch();
        }, () => resolve(found));
      readBatch();
    });
  }

  async function onDrop(event) {
    event.preventDefault();
    dropzone.classList.remove("over");
    const items = Array.from(event.dataTransfer.items || []);
    const entries = items.map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    if (entries.length) {
      for (const entry of entries) {
        for (const { file, name } of await walk(entry, "")) enqueue(file, name);
      }
      updateOverall();
      pump();
    } else {
      addFiles(event.dataTransfer.files);
    }
  }

  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", onDrop);
  for (const id of ["file-input", "folder-input"]) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => {
      addFiles(Array.from(input.files));
      input.value = "";
    });
  }
})();
