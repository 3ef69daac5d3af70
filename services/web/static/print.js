// 打印本页: buttons marked data-print open the browser's print dialog (the print stylesheet does the layout).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
