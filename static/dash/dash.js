// Loads the first page of notes from the JSON API with the browser's session cookie.
(async () => {
  const count = document.getElementById("note-count");
  const newest = document.getElementById("newest");
  const list = document.getElementById("dash-notes");
  try {
    const res = await fetch("/api/notes", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = await res.json();
    count.textContent = String(data.notes.length);
    newest.textContent = data.notes.length ? data.notes[0].title : "none";
    for (const note of data.notes) {
      const li = document.createElement("li");
      li.textContent = `${note.title} (${note.author_name})`;
      list.appendChild(li);
    }
  } catch (err) {
    count.textContent = "?";
    newest.textContent = `could not load notes: ${err.message}`;
  }
})();
