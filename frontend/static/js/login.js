// The login page: exchanges the token for an HttpOnly session cookie, then goes back where the user was.
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const input = document.getElementById("token");

function nextTarget() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // Only same-site paths: a crafted ?next= must not send the user elsewhere after login.
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

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
