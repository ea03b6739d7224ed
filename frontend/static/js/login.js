// The login page: exchanges the token for an HttpOnly session cookie, then goes back where the user was.
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const input = document.getElementById("token");
const intro = document.getElementById("login-intro");
const open = document.getElementById("login-open");
const TOKEN_TEXT = "This server needs its API token (the value of LOWDINO_API_TOKEN). You enter it once; the browser then keeps a session cookie that scripts cannot read.";

// Whether a token is needed is the server's to say (GET /api/session): a page that asks for one the
// server does not have would send the user hunting for a value that does not exist.
async function showWhatIsNeeded() {
  let required = true;
  try {
    const response = await fetch("/api/session", { credentials: "same-origin" });
    if (response.ok) required = Boolean((await response.json()).auth_required);
  } catch {
    // Unreachable server: show the form; submitting it says what failed.
  }
  if (required) {
    intro.textContent = TOKEN_TEXT;
    form.hidden = false;
    input.focus();
  } else {
    intro.hidden = true;
    document.getElementById("login-continue").setAttribute("href", nextTarget());
    open.hidden = false;
  }
}

function nextTarget() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // Only same-site paths: a crafted ?next= must not send the user elsewhere after login.
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

showWhatIsNeeded();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  if (!input.value) {
    error.textContent = "Enter the token the server was started with (LOWDINO_API_TOKEN).";
    input.focus();
    return;
  }
  try {
    const response = await fetch("/api/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: input.value }),
      credentials: "same-origin",
    });
    if (response.ok) {
      location.replace(nextTarget());
      return;
    }
    const body = await response.json().catch(() => ({}));
    error.textContent = typeof body.detail === "string" ? body.detail : `Login failed (HTTP ${response.status}).`;
  } catch (exc) {
    error.textContent = `The server did not answer (${exc.message}); check that it is running and retry.`;
  }
  input.select();
});
