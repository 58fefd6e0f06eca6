// keyledger console: Copy buttons (Clipboard API), the account picker, Escape closes menus.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed: select the key and copy it";
  }
  const status = document.getElementById(button.dataset.copy + "-status");
  if (status) status.textContent = button.textContent;
});
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-navigate]");
  if (select && select.value) {
    window.location.assign(select.dataset.navigate.replace("{id}", encodeURIComponent(select.value)));
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});
