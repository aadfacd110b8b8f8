// bakery catalog page: copy buttons, and filtering the listing as you
// type. The listing filters on the server without JavaScript; exported
// static pages filter only here.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const block = document.getElementById(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(block.textContent);
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(block);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2500);
    });
  }

  const form = document.querySelector("form.filter");
  if (!form) {
    return;
  }
  const query = form.elements.q;
  const arch = form.elements.arch;
  const rows = document.querySelectorAll("tr[data-name]");
  const shown = document.getElementById("shown");
  const apply = () => {
    const text = query.value.trim().toLowerCase();
    let count = 0;
    for (const row of rows) {
      const match = (text === "" || row.dataset.name.toLowerCase().includes(text) ||
        row.dataset.description.toLowerCase().includes(text)) &&
        (arch.value === "" || row.dataset.arches.split(" ").includes(arch.value));
      row.hidden = !match;
      if (match) {
        count++;
      }
    }
    shown.textContent = `${count} of ${rows.length} extensions`;
  };
  query.addEventListener("input", apply);
  arch.addEventListener("change", apply);
  if (document.body.dataset.static) {
    const params = new URLSearchParams(window.location.search);
    query.value = params.get("q") || "";
    arch.value = params.get("arch") || "";
    apply();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply();
      history.replaceState(null, "", "?" + new URLSearchParams(new FormData(form)));
    });
  }
});
