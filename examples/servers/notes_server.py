"""A small MCP server of the project's own, federated by examples/gateway.yaml.

An in-memory notebook: tools to add, list and delete notes, each note readable as a resource
(`notes://note/{id}`), and a prompt that summarises them. Run over stdio:
`python examples/servers/notes_server.py`.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes", instructions="A scratch notebook: add_note, list_notes, delete_note.")
_notes: dict[int, str] = {}


@server.tool()
def add_note(text: str) -> str:
    """Store a note and return its id."""
    note_id = max(_notes, default=0) + 1
    _notes[note_id] = text
    return f"note {note_id} saved"


@server.tool()
def list_notes() -> list[str]:
    """List every note as `id: text`."""
    return [f"{i}: {text}" for i, text in sorted(_notes.items())]


@server.tool()
def delete_note(note_id: int) -> str:
    """Delete a note by id."""
    if _notes.pop(note_id, None) is None:
        raise ValueError(f"no note {note_id}")
    return f"note {note_id} deleted"


@server.resource("notes://note/{note_id}")
def read_note(note_id: str) -> str:
    """One note's text."""
    return _notes.get(int(note_id), "")


@server.prompt()
def summarise_notes() -> str:
    """Ask the model to summarise the notebook."""
    body = "\n".join(f"- {t}" for t in _notes.values()) or "(no notes yet)"
    return f"Summarise these notes in three bullet points:\n{body}"


if __name__ == "__main__":
    server.run()
