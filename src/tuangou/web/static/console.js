// The consoles' small script, served from our own origin so the pages' CSP needs no inline script.
// Every part looks for its elements first; without JavaScript every page still works as of its load.
(function () {
  var sla = location.pathname.indexOf("/console/merchant/disputes") === 0;
  if (sla) {
    // SLA timers: time left to respond; past the deadline ops take over
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var end = Date.parse(el.dataset.countdown); el.title = el.textContent;
      var tick = function () { var s = Math.floor((end - Date.now()) / 1000); if (s <= 0) { el.textContent = "0:00:00"; return; }
        el.textContent = Math.floor(s / 3600) + ":" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0"); };
      tick(); setInterval(tick, 1000);
    });
  } else {
    // countdowns: "2d 03:15:09" left; the store-time end date stays in the title
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var end = Date.parse(el.dataset.countdown); el.title = el.textContent;
      var tick = function () { var s = Math.max(0, Math.floor((end - Date.now()) / 1000)); var d = Math.floor(s / 86400);
        var h = String(Math.floor(s % 86400 / 3600)).padStart(2, "0"), m = String(Math.floor(s % 3600 / 60)).padStart(2, "0"),
            sec = String(s % 60).padStart(2, "0"); el.textContent = (d ? d + "d " : "") + h + ":" + m + ":" + sec; };
      tick(); setInterval(tick, 1000);
    });
  }
  if (document.getElementById("gauges")) {
    // live gauges: swap in fresh ones every 15 s; without JavaScript the page is simply as of its load
    setInterval(function () {
      fetch("/console/merchant/gauges", {credentials: "same-origin"}).then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (!html) return; var t = document.createElement("div"); t.innerHTML = html;
          var fresh = t.querySelector("#gauges"); var old = document.getElementById("gauges");
          if (fresh && old) old.replaceWith(fresh); });
    }, 15000);
  }
  // scanning where the browser has a camera and BarcodeDetector; typing the code always works
  (function () {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
    var btn = document.getElementById("scan"), video = document.getElementById("camera");
    if (!btn || !video) return;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var detector = new BarcodeDetector({formats: ["qr_code"]});
      navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}}).then(function (stream) {
        video.srcObject = stream; video.hidden = false; video.play();
        var tick = function () {
          detector.detect(video).then(function (codes) {
            if (codes.length) { stream.getTracks().forEach(function (t) { t.stop(); });
              document.getElementById("code").value = codes[0].rawValue.split("/").pop();
              document.getElementById("redeem-form").submit(); }
            else { requestAnimationFrame(tick); }
          });
        };
        tick();
      });
    });
  })();
})();
