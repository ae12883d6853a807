// Shows the error that Lucent sent back to this form page: ?error=<code>&detail=<field>:<code>.
const messages = {
  unique_violation: "That username is taken.",
  invalid_credentials: "Incorrect username or password.",
  account_locked: "Too many failed sign-ins. Wait a few minutes, then try again.",
  rate_limited: "The server is busy. Try again in a moment.",
  unauthorized: "You are not signed in.",
  csrf_failed: "This form was sent from another site and was refused.",
};
const details = {
  "username:too_short": "Usernames have 4 to 31 characters.",
  "username:too_long": "Usernames have 4 to 31 characters.",
  "username:required": "Choose a username.",
  "username:unique": "That username is taken.",
  "password:required": "Choose a password.",
  "password:too_short": "Passwords need at least 12 characters.",
  "password:too_long": "Passwords have at most 256 characters.",
  "password:common_password": "That password is too common. Choose another.",
};
const query = new URLSearchParams(location.search);
const code = query.get("error");
if (code) {
  const lines = query
    .getAll("detail")
    .map((d) => details[d] || messages[code] || `Invalid ${d.split(":")[0]}.`);
  if (lines.length === 0) lines.push(messages[code] || `Something went wrong (${code}).`);
  const box = document.getElementById("error");
  box.textContent = lines.join(" ");
  box.hidden = false;
}
