// WeChat Pay JSAPI: hand the server-signed parameters to WeChat's payment sheet. Only WeChat's
// own browser has WeixinJSBridge. "ok" is not proof of payment: the result page waits for
// WeChat Pay's notice (or asks WeChat Pay) before it says paid.
(function () {
  "use strict";
  var button = document.getElementById("wechat-jsapi");
  var status = document.getElementById("wechat-jsapi-status");
  if (!button) { return; }
  var params = JSON.parse(button.getAttribute("data-params"));
  var done = button.getAttribute("data-done");

  function pay() {
    button.disabled = true;
    window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function (res) {
      var word = (res && res.err_msg) || "";
      if (word === "get_brand_wcpay_request:ok") {
        window.location.replace(done);
        return;
      }
      button.disabled = false;
      status.textContent = status.getAttribute(
        word === "get_brand_wcpay_request:cancel" ? "data-cancelled" : "data-failed");
    });
  }

  function ready() {
    button.disabled = false;
    button.addEventListener("click", pay);
    pay();
  }

  if (window.WeixinJSBridge && window.WeixinJSBridge.invoke) {
    ready();
  } else {
    document.addEventListener("WeixinJSBridgeReady", ready, false);
  }
})();
