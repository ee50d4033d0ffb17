// The knowledge suggestions side panel.
//
// The page is served under a Content-Security-Policy without inline script,
// so all behaviour lives here. The agent's token arrives in the iframe URL;
// it is read once, removed from the address bar, and sent as a bearer token.
// Snippets and article bodies are sanitized by the sidecar (nh3) before
// they reach this script, which is why they are inserted as HTML.
(function () {
  "use strict";

  var SEARCH_DELAY_MS = 300;
  var root = document.getElementById("widget");
  if (!root) {
    return;
  }

  var state = {
    table: root.dataset.table,
    sysId: root.dataset.sysId,
    apiBase: root.dataset.apiBase,
    token: readToken(),
    suggestions: null,
    results: [],
    article: null,
    opener: null,
    searchTimer: null,
    searchSequence: 0,
    sendSummary: null
  };

  var elements = {
    caseLabel: byId("case-label"),
    listView: byId("list-view"),
    searchForm: byId("search-form"),
    searchInput: byId("search-input"),
    resultsHeading: byId("results-heading"),
    results: byId("results"),
    preview: byId("preview"),
    previewClose: byId("preview-close"),
    previewLink: byId("preview-link"),
    previewTitle: byId("preview-title"),
    previewMeta: byId("preview-meta"),
    previewBody: byId("preview-body"),
    openAttach: byId("open-attach"),
    openSend: byId("open-send"),
    dismiss: byId("dismiss"),
    sendUnavailable: byId("send-unavailable"),
    actionStatus: byId("action-status"),
    attachForm: byId("attach-form"),
    attachNote: byId("attach-note"),
    sendForm: byId("send-form"),
    sendSummary: byId("send-summary"),
    sendConfirm: byId("send-confirm"),
    sendText: byId("send-text"),
    sendConfirmButton: byId("send-confirm-button"),
    sendStatus: byId("send-status"),
    sendEdit: byId("send-edit"),
    feedbackForm: byId("feedback-form"),
    feedbackComment: byId("feedback-comment"),
    feedbackFlag: byId("feedback-flag"),
    feedbackStatus: byId("feedback-status"),
    status: byId("status"),
    alert: byId("alert")
  };

  function byId(id) {
    return document.getElementById(id);
  }

  // Read the token from the URL, then drop it from the address bar so it is
  // not kept in history or copied along with the URL.
  function readToken() {
    var url = new URL(window.location.href);
    var token = url.searchParams.get("token");
    if (token) {
      url.searchParams.delete("token");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    return token;
  }

  // Fill a meta line with its parts. Short parts such as "KB0010022" and
  // "updated 2026-12-04" stay on one line, so a narrow panel breaks between
  // parts, not inside a date. A long knowledge base title may still wrap.
  function fillMeta(line, parts) {
    line.textContent = "";
    parts.filter(Boolean).forEach(function (part, index) {
      if (index > 0) {
        line.appendChild(document.createTextNode(" · "));
      }
      var span = document.createElement("span");
      span.className = part.length <= 24 ? "nowrap" : "";
      span.textContent = part;
      line.appendChild(span);
    });
  }

  function setStatus(text) {
    elements.status.textContent = text;
  }

  // Show the result of an action in the status line next to the control
  // that started it, because at panel height the page-wide status line sits
  // far below the fold. The line is a polite live region, so screen readers
  // announce the text as well.
  function setNearStatus(line, text) {
    elements.status.textContent = "";
    line.textContent = text;
    if (text) {
      line.scrollIntoView({ block: "nearest" });
    }
  }

  function showError(text) {
    elements.alert.textContent = text;
    elements.alert.hidden = false;
  }

  function clearError() {
    elements.alert.textContent = "";
    elements.alert.hidden = true;
  }

  function describeFailure(response, body) {
    if (response.status === 401) {
      return "Your session has expired or is not valid. Reload the case form to open the panel again.";
    }
    if (body && body.error && body.error.message) {
      return body.error.message;
    }
    return "The knowledge service answered with status " + response.status + ". Try again in a moment.";
  }

  // Call the widget API and return the parsed JSON, or throw an Error whose
  // message is ready to show to the agent.
  function callApi(method, path, payload) {
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (state.token) {
      options.headers.Authorization = "Bearer " + state.token;
    }
    if (payload !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    return fetch(state.apiBase + path, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) {
          throw new Error(describeFailure(response, body));
        }
        return body;
      });
    }, function () {
      throw new Error("The knowledge service cannot be reached. Check the connection and try again.");
    });
  }

  function caseParameters() {
    return "table=" + encodeURIComponent(state.table) + "&sys_id=" + encodeURIComponent(state.sysId);
  }

  function casePayload(extra) {
    var payload = { table: state.table, sys_id: state.sysId };
    if (state.article && state.article.rank) {
      payload.rank = state.article.rank;
    }
    Object.keys(extra || {}).forEach(function (key) { payload[key] = extra[key]; });
    return payload;
  }

  function formatDate(iso) {
    return iso ? iso.slice(0, 10) : "";
  }

  // ---- Result list ----------------------------------------------------

  function loadSuggestions() {
    clearError();
    setStatus("Loading suggestions…");
    elements.results.setAttribute("aria-busy", "true");
    return callApi("GET", "/suggestions?" + caseParameters()).then(function (body) {
      elements.caseLabel.textContent = body.case.number + ": " + body.case.short_description;
      state.suggestions = body.results;
      showResults(body.results, "Suggested for this case",
        "No articles match this case yet. Try a search with other words.");
    }).catch(function (error) {
      elements.results.removeAttribute("aria-busy");
      setStatus("");
      showError(error.message);
    });
  }

  function runSearch(query) {
    var sequence = ++state.searchSequence;
    clearError();
    setStatus("Searching…");
    elements.results.setAttribute("aria-busy", "true");
    var path = "/search?q=" + encodeURIComponent(query) + "&" + caseParameters();
    return callApi("GET", path).then(function (body) {
      if (sequence !== state.searchSequence) {
        return;
      }
      showResults(body.results, "Results for “" + query + "”",
        "No articles match “" + query + "”. Try fewer or other words.");
    }).catch(function (error) {
      if (sequence !== state.searchSequence) {
        return;
      }
      elements.results.removeAttribute("aria-busy");
      setStatus("");
      showError(error.message);
    });
  }

  function showResults(results, heading, emptyText) {
    state.results = results;
    elements.resultsHeading.textContent = heading;
    elements.results.textContent = "";
    results.forEach(function (result) {
      elements.results.appendChild(renderResult(result));
    });
    elements.results.removeAttribute("aria-busy");
    if (results.length === 0) {
      setStatus(emptyText);
    } else {
      setStatus(results.length === 1 ? "1 article found." : results.length + " articles found.");
    }
  }

  function renderResult(result) {
    var item = document.createElement("li");
    item.className = "result";
    item.dataset.sysId = result.sys_id;

    var title = document.createElement("button");
    title.type = "button";
    title.className = "result-title";
    title.textContent = result.title;
    title.addEventListener("click", function () { openPreview(result, title); });
    item.appendChild(title);

    var meta = document.createElement("p");
    meta.className = "meta";
    fillMeta(meta, [result.number, result.knowledge_base.title, "updated " + formatDate(result.updated_on)]);
    item.appendChild(meta);

    var snippet = document.createElement("p");
    snippet.className = "snippet";
    snippet.innerHTML = result.snippet_html;
    item.appendChild(snippet);

    var actions = document.createElement("div");
    actions.className = "row";
    var attachButton = quickButton("Attach", "Attach " + result.number + " to the case", function (button) {
      attach(result, "", button);
    });
    attachButton.classList.add("attach-button");
    if (result.attached) {
      markDone(attachButton, "Attached");
    }
    actions.appendChild(attachButton);
    actions.appendChild(quickButton("Not relevant", "Hide " + result.number + " for this case", function (button) {
      dismiss(result, button);
    }));
    item.appendChild(actions);
    return item;
  }

  function quickButton(label, accessibleLabel, onClick) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button button-small";
    button.textContent = label;
    button.setAttribute("aria-label", accessibleLabel);
    button.addEventListener("click", function () {
      if (!isDone(button)) {
        onClick(button);
      }
    });
    return button;
  }

  function scheduleSearch() {
    window.clearTimeout(state.searchTimer);
    state.searchTimer = window.setTimeout(searchNow, SEARCH_DELAY_MS);
  }

  function searchNow() {
    window.clearTimeout(state.searchTimer);
    var query = elements.searchInput.value.trim();
    if (query) {
      runSearch(query);
      return;
    }
    state.searchSequence++;
    if (state.suggestions) {
      showResults(state.suggestions, "Suggested for this case",
        "No articles match this case yet. Try a search with other words.");
    } else {
      loadSuggestions();
    }
  }

  // ---- Actions --------------------------------------------------------

  // Mark a button as done without disabling it, because a disabled button
  // loses keyboard focus and would drop the agent back to the top of the page.
  function markDone(button, label) {
    if (button) {
      button.textContent = label;
      button.setAttribute("aria-disabled", "true");
    }
  }

  function isDone(button) {
    return button.getAttribute("aria-disabled") === "true";
  }

  // Attach an article. From the preview the button is null and the result
  // is shown in the action status line below the article actions.
  function attach(result, note, button) {
    clearError();
    var report = button ? setStatus : function (text) { setNearStatus(elements.actionStatus, text); };
    report("Attaching " + result.number + "…");
    var payload = { table: state.table, sys_id: state.sysId, rank: result.rank };
    if (note) {
      payload.work_note = note;
    }
    return callApi("POST", "/articles/" + result.sys_id + "/attach", payload).then(function (body) {
      result.attached = true;
      markDone(button, "Attached");
      markDone(elements.results.querySelector('[data-sys-id="' + result.sys_id + '"] .attach-button'), "Attached");
      report(body.repeated ? result.number + " was already attached to the case."
        : result.number + " is attached to the case.");
    }).catch(function (error) {
      report("");
      showError(error.message);
    });
  }

  function dismiss(result, button) {
    clearError();
    var payload = { table: state.table, sys_id: state.sysId, rank: result.rank };
    return callApi("POST", "/articles/" + result.sys_id + "/dismiss", payload).then(function () {
      var item = elements.results.querySelector('[data-sys-id="' + result.sys_id + '"]');
      var next = item && (item.nextElementSibling || item.previousElementSibling);
      if (item) {
        item.remove();
      }
      if (state.suggestions) {
        state.suggestions = state.suggestions.filter(function (other) { return other.sys_id !== result.sys_id; });
      }
      setStatus(result.number + " is hidden for this case.");
      if (state.article && state.article.sys_id === result.sys_id) {
        closePreview();
      }
      var focusTarget = next ? next.querySelector(".result-title") : elements.searchInput;
      focusTarget.focus();
      markDone(button, "Hidden");
    }).catch(function (error) {
      showError(error.message);
    });
  }

  function checkSendMessage(event) {
    event.preventDefault();
    clearError();
    var summary = elements.sendSummary.value;
    if (!summary.trim()) {
      showError("Write a short summary for the customer first.");
      elements.sendSummary.focus();
      return;
    }
    var article = state.article;
    callApi("POST", "/articles/" + article.sys_id + "/send/preview", casePayload({ summary: summary }))
      .then(function (body) {
        state.sendSummary = summary;
        elements.sendText.textContent = body.text;
        elements.sendConfirm.hidden = false;
        elements.sendConfirmButton.disabled = false;
        elements.sendConfirmButton.focus();
        setNearStatus(elements.sendStatus, "Check the message, then confirm to send it to the customer.");
      }).catch(function (error) {
        showError(error.message);
      });
  }

  function confirmSend() {
    clearError();
    var article = state.article;
    elements.sendStatus.textContent = "";
    elements.sendConfirmButton.disabled = true;
    setNearStatus(elements.actionStatus, "Sending " + article.number + " to the customer…");
    callApi("POST", "/articles/" + article.sys_id + "/send", casePayload({ summary: state.sendSummary }))
      .then(function (body) {
        closeForm(elements.sendForm, elements.openSend);
        markDone(elements.openSend, "Sent");
        setNearStatus(elements.actionStatus, body.repeated
          ? "This message was already sent. Nothing was posted again."
          : article.number + " was sent to the customer.");
      }).catch(function (error) {
        elements.sendConfirmButton.disabled = false;
        elements.sendConfirmButton.focus();
        setNearStatus(elements.actionStatus, "");
        showError(error.message);
      });
  }

  function sendFeedback(event) {
    event.preventDefault();
    clearError();
    var choice = elements.feedbackForm.querySelector('input[name="helpful"]:checked');
    var extra = { comment: elements.feedbackComment.value, flag: elements.feedbackFlag.checked };
    if (choice) {
      extra.helpful = choice.value === "true";
    }
    if (!choice && !extra.comment.trim() && !extra.flag) {
      showError("Choose Yes or No, write a comment, or flag the article before sending feedback.");
      return;
    }
    callApi("POST", "/articles/" + state.article.sys_id + "/feedback", casePayload(extra)).then(function (body) {
      setNearStatus(elements.feedbackStatus,
        body.repeated ? "This feedback was already recorded." : "Thank you, your feedback is recorded.");
    }).catch(function (error) {
      showError(error.message);
    });
  }

  // ---- Preview --------------------------------------------------------

  function openPreview(result, opener) {
    clearError();
    state.opener = opener;
    state.article = result;
    setStatus("Loading " + result.number + "…");
    var path = "/articles/" + result.sys_id + "?" + caseParameters() + "&rank=" + result.rank;
    callApi("GET", path).then(function (article) {
      elements.previewTitle.textContent = article.title;
      fillMeta(elements.previewMeta, [article.number, article.knowledge_base.title,
        "updated " + formatDate(article.updated_on)]);
      elements.previewLink.href = article.url;
      elements.previewBody.innerHTML = article.html;
      resetPreviewForms();
      if (result.attached) {
        markDone(elements.openAttach, "Attached");
      }
      // The API rejects sending an article that user criteria restrict, so
      // the widget offers only Attach for it.
      elements.openSend.hidden = article.public !== true;
      elements.sendUnavailable.hidden = article.public === true;
      elements.listView.hidden = true;
      elements.preview.hidden = false;
      elements.previewTitle.focus();
      setStatus("");
    }).catch(function (error) {
      setStatus("");
      showError(error.message);
    });
  }

  function closePreview() {
    elements.preview.hidden = true;
    elements.listView.hidden = false;
    state.article = null;
    if (state.opener && document.body.contains(state.opener)) {
      state.opener.focus();
    } else {
      elements.searchInput.focus();
    }
  }

  function resetPreviewForms() {
    closeForm(elements.attachForm, elements.openAttach, true);
    closeForm(elements.sendForm, elements.openSend, true);
    elements.attachNote.value = "";
    elements.sendSummary.value = "";
    elements.sendConfirm.hidden = true;
    elements.feedbackForm.reset();
    elements.openAttach.removeAttribute("aria-disabled");
    elements.openAttach.textContent = "Attach to case";
    elements.openSend.removeAttribute("aria-disabled");
    elements.openSend.textContent = "Send to customer";
    elements.actionStatus.textContent = "";
    elements.feedbackStatus.textContent = "";
  }

  function toggleForm(form, opener, focusTarget) {
    if (!form.hidden) {
      closeForm(form, opener);
      return;
    }
    form.hidden = false;
    opener.setAttribute("aria-expanded", "true");
    focusTarget.focus();
  }

  function closeForm(form, opener, quiet) {
    form.hidden = true;
    opener.setAttribute("aria-expanded", "false");
    if (form === elements.sendForm) {
      elements.sendConfirm.hidden = true;
    }
    if (!quiet) {
      opener.focus();
    }
  }

  // ---- Wiring ---------------------------------------------------------

  elements.searchForm.addEventListener("submit", function (event) {
    event.preventDefault();
    searchNow();
  });
  elements.searchInput.addEventListener("input", scheduleSearch);
  elements.previewClose.addEventListener("click", closePreview);
  elements.openAttach.addEventListener("click", function () {
    if (!isDone(elements.openAttach)) {
      toggleForm(elements.attachForm, elements.openAttach, elements.attachNote);
    }
  });
  elements.openSend.addEventListener("click", function () {
    if (!isDone(elements.openSend)) {
      toggleForm(elements.sendForm, elements.openSend, elements.sendSummary);
    }
  });
  elements.dismiss.addEventListener("click", function () { dismiss(state.article, null); });
  elements.attachForm.addEventListener("submit", function (event) {
    event.preventDefault();
    attach(state.article, elements.attachNote.value.trim(), null).then(function () {
      if (elements.alert.hidden) {
        closeForm(elements.attachForm, elements.openAttach);
        markDone(elements.openAttach, "Attached");
      }
    });
  });
  elements.sendForm.addEventListener("submit", checkSendMessage);
  elements.sendSummary.addEventListener("input", function () {
    // An edited summary must be checked again before it can be sent.
    elements.sendConfirm.hidden = true;
  });
  elements.sendConfirmButton.addEventListener("click", confirmSend);
  elements.sendEdit.addEventListener("click", function () {
    elements.sendConfirm.hidden = true;
    elements.sendSummary.focus();
  });
  elements.feedbackForm.addEventListener("submit", sendFeedback);
  document.querySelectorAll("[data-close-form]").forEach(function (button) {
    button.addEventListener("click", function () {
      var form = byId(button.dataset.closeForm);
      closeForm(form, form === elements.sendForm ? elements.openSend : elements.openAttach);
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !elements.preview.hidden) {
      event.preventDefault();
      closePreview();
    }
  });

  if (!state.token) {
    showError("This panel was opened without a token. Open it from the case form on the platform.");
    return;
  }
  loadSuggestions();
})();
