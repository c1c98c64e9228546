"""The local assistant's RAG: /rag/reindex over the corpus directory and /rag/query, with exact
source spans, incremental runs, BM25 for identifiers, progress streams and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import orjson
import pytest
from httpx_sse import connect_sse
from typer.testing import CliRunner

from cli.main import app
from server.retrieval.store import PassageFilter
from tests.identity.helpers import admin, new_account
from tests.retrieval import files
from tests.support.live import LiveStack

PYTHON = (
    "# Guide Python\n\n"
    "Les listes en Python sont des séquences modifiables. On ajoute un élément avec append.\n\n"
    "Les dictionnaires associent des clés à des valeurs; get renvoie une valeur par défaut.\n\n"
    "Les générateurs produisent leurs valeurs à la demande avec yield, sans tout garder en mémoire.\n"
)
COOKING = (
    "Recette de la soupe à l'oignon.\n\n"
    "Faire revenir les oignons dans le beurre pendant quarante minutes, jusqu'à ce qu'ils caramélisent.\n\n"
    "Ajouter le bouillon, servir avec du pain grillé et du fromage râpé gratiné au four.\n"
)


@pytest.fixture
def corpus(corpus_dir: Path, http: httpx.Client, rag_stack: LiveStack) -> Path:
    """An empty corpus directory and an index emptied to match."""
    for child in corpus_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    response = http.post("/rag/reindex", json={}, headers=admin(http).bearer)
    assert response.status_code == 200, response.text
    return corpus_dir


def reindex(http: httpx.Client, **body: object) -> dict[str, object]:
    response = http.post("/rag/reindex", json=body, headers=admin(http).bearer)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_query_results_cite_exact_spans_of_the_files(corpus: Path, http: httpx.Client) -> None:
    (corpus / "python.md").write_text(PYTHON)
    (corpus / "cuisine").mkdir()
    (corpus / "cuisine" / "soupe.txt").write_text(COOKING)
    (corpus / "cuisine" / "fiche.pdf").write_bytes(files.pdf(["Gratiner la soupe au four chaud."]))

    result = reindex(http)
    user = new_account(http)
    answer = http.post(
        "/rag/query", json={"query": "comment faire caraméliser les oignons", "top_k": 3}, headers=user.bearer
    )

    assert (result["indexed"], result["unchanged"], result["removed"], result["failed"]) == (3, 0, 0, [])
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert 1 <= len(results) <= 3
    assert results[0]["source"]["path"] == "cuisine/soupe.txt" and "caramélisent" in results[0]["text"]
    for passage in results:
        source = passage["source"]
        on_disk = corpus / source["path"]
        if on_disk.suffix == ".pdf":
            continue
        content = on_disk.read_text()
        assert passage["text"] == content[source["start"] : source["end"]]
        import hashlib

        assert source["sha256"] == hashlib.sha256(on_disk.read_bytes()).hexdigest()
        assert source["chunk_id"] and passage["score"] > 0
    scores = [passage["score"] for passage in results]
    assert scores == sorted(scores, reverse=True)


def test_incremental_reindex_reads_only_what_changed(corpus: Path, http: httpx.Client) -> None:
    (corpus / "python.md").write_text(PYTHON)
    (corpus / "soupe.txt").write_text(COOKING)
    first = reindex(http)

    again = reindex(http, full=False)
    (corpus / "python.md").write_text(PYTHON.replace("append", "insert à une position donnée"))
    (corpus / "soupe.txt").unlink()
    (corpus / "notes.md").write_text("Relais indexe ce dossier.\n")
    changed = reindex(http, full=False)
    user = new_account(http)
    found = http.post("/rag/query", json={"query": "ajouter un élément à une liste", "top_k": 10}, headers=user.bearer)

    assert (first["indexed"], first["unchanged"]) == (2, 0)
    assert (again["indexed"], again["unchanged"], again["removed"]) == (0, 2, 0)
    assert (changed["indexed"], changed["unchanged"], changed["removed"]) == (2, 0, 1)
    texts = [passage["text"] for passage in found.json()["results"]]
    paths = {passage["source"]["path"] for passage in found.json()["results"]}
    assert any("insert à une position" in text for text in texts)
    assert not any("append" in text for text in texts) and "soupe.txt" not in paths


def test_full_reindex_replaces_passages_and_leaves_no_old_vectors(
    corpus: Path, http: httpx.Client, rag_stack: LiveStack
) -> None:
    (corpus / "python.md").write_text(PYTHON)
    reindex(http)
    knowledge = rag_stack.server.retrieval.knowledge  # type: ignore[union-attr]
    count = rag_stack.run(knowledge.passage_count(PassageFilter(scope="corpus")))

    again = reindex(http, full=True)

    assert again["indexed"] == 1 and count > 0
    assert rag_stack.run(knowledge.passage_count(PassageFilter(scope="corpus"))) == count


def test_an_exact_identifier_is_found_by_bm25_where_dense_search_misses_it(
    corpus: Path, http: httpx.Client, rag_stack: LiveStack
) -> None:
    # Look-alike identifiers in short notes (close in embedding space), the real one inside prose.
    look_alikes = ["RQ-7713-PX", "RQ-7732-PX", "RQ-1773-PX", "RQ-7730-PX", "RQ-3177-PX", "RQ-7721-PX"]
    look_alikes += ["RQ-7137-PX", "RQ-1377-PX", "RQ-7371-PX", "RQ-7738-PX", "RQ-7317-PX", "RQ-7131-PX"]
    for number, code in enumerate(look_alikes):
        (corpus / f"ticket{number}.txt").write_text(f"Ticket {code}.")
    (corpus / "rapport.md").write_text(
        "La maintenance de mardi a remplacé les disques du serveur de fichiers; la sauvegarde de nuit "
        "est passée sans erreur. L'incident RQ-7731-PX reste ouvert en attendant la pièce de rechange."
    )
    reindex(http)
    knowledge = rag_stack.server.retrieval.knowledge  # type: ignore[union-attr]

    dense = rag_stack.run(knowledge.query_corpus("RQ-7731-PX", 10, mode="dense"))
    words = rag_stack.run(knowledge.query_corpus("RQ-7731-PX", 10, mode="text"))
    hybrid = rag_stack.run(knowledge.query_corpus("RQ-7731-PX", 10, mode="hybrid"))

    assert not any("RQ-7731-PX" in passage.text for passage in dense), [p.text for p in dense]
    assert "RQ-7731-PX" in words[0].text, [(p.text, p.score) for p in words]
    # Fused, the BM25 hit stays among the results that dense search alone loses entirely.
    assert len(dense) == 10 and any("RQ-7731-PX" in passage.text for passage in hybrid)


def test_reindex_streams_progress_as_server_sent_events(corpus: Path, http: httpx.Client) -> None:
    for n in range(3):
        (corpus / f"note{n}.md").write_text(f"Note {n}: Relais indexe les fichiers un par un.\n")
    events = []
    with connect_sse(
        http, "POST", "/rag/reindex", json={"stream": True, "full": True}, headers=admin(http).bearer
    ) as source:
        assert source.response.status_code == 200
        for event in source.iter_sse():
            if event.data != "[DONE]":
                events.append((event.event, orjson.loads(event.data)))

    kinds = [kind for kind, _ in events]
    assert kinds == ["progress", "progress", "progress", "done"]
    assert [body["progress"]["files_done"] for _, body in events[:3]] == [1, 2, 3]
    assert events[0][1]["progress"]["files_total"] == 3
    assert events[-1][1]["done"]["indexed"] == 3


def test_reindex_is_for_operators_and_stays_inside_the_corpus(corpus: Path, http: httpx.Client) -> None:
    user = new_account(http)
    root = admin(http)

    forbidden = http.post("/rag/reindex", json={}, headers=user.bearer)
    escape = http.post("/rag/reindex", json={"path": "../"}, headers=root.bearer)
    missing = http.post("/rag/reindex", json={"path": "absent"}, headers=root.bearer)
    empty_query = http.post("/rag/query", json={"query": "  "}, headers=user.bearer)
    too_many = http.post("/rag/query", json={"query": "x", "top_k": 500}, headers=user.bearer)

    assert forbidden.status_code == 403 and escape.status_code == 400 and missing.status_code == 404
    assert empty_query.status_code == 422 and too_many.status_code == 422


def test_files_that_cannot_be_read_are_reported_not_fatal(corpus: Path, http: httpx.Client) -> None:
    (corpus / "ok.txt").write_text("Un fichier lisible.\n")
    (corpus / "cassé.pdf").write_bytes(b"%PDF-1.4 garbage")
    (corpus / ".cache").mkdir()
    (corpus / ".cache" / "hidden.txt").write_text("ignored")
    outside = corpus.parent / f"{corpus.name}-outside.txt"
    outside.write_text("Hors du corpus: secret.")
    (corpus / "lien.txt").symlink_to(outside)

    result = reindex(http)

    assert result["indexed"] == 1
    assert result["failed"] == [{"path": "cassé.pdf", "reason": "The PDF is corrupt or unreadable"}]


def test_the_cli_indexes_a_folder_with_progress(
    corpus: Path, http: httpx.Client, rag_stack: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    (corpus / "manuel").mkdir()
    for n in range(2):
        (corpus / "manuel" / f"page{n}.md").write_text(f"Page {n} du manuel.\n")
    key = http.post(
        "/api/keys", json={"name": "indexer", "scopes": ["corpus:write"]}, headers=admin(http).bearer
    ).json()["key"]
    monkeypatch.setenv("RELAIS_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("RELAIS_API_KEY", key)

    outcome = CliRunner().invoke(app, ["index", str(corpus / "manuel"), "--server", rag_stack.grpc_target])
    outside = CliRunner().invoke(
        app, ["index", str(corpus.parent), "--server", rag_stack.grpc_target], env={"COLUMNS": "400"}
    )

    assert outcome.exit_code == 0, outcome.output
    assert "indexed 2, unchanged 0, removed 0" in outcome.output
    assert outside.exit_code == 2 and "not inside the corpus directory" in outside.output


@pytest.mark.slow
def test_relais_index_in_a_terminal_shows_a_bar_with_an_eta(
    corpus: Path, http: httpx.Client, rag_stack: LiveStack
) -> None:
    import os
    import sys

    import pexpect

    (corpus / "guide").mkdir()
    for n in range(8):
        (corpus / "guide" / f"chapitre{n}.md").write_text(f"Chapitre {n}: régler le routeur, étape {n}.\n" * 2)
    key = http.post(
        "/api/keys", json={"name": "indexer", "scopes": ["corpus:write"]}, headers=admin(http).bearer
    ).json()["key"]
    env = {**os.environ, "RELAIS_CORPUS_DIR": str(corpus), "RELAIS_API_KEY": key, "COLUMNS": "160", "NO_COLOR": "1"}

    terminal = pexpect.spawn(
        str(Path(sys.executable).parent / "relais"),
        ["index", str(corpus / "guide"), "--server", rag_stack.grpc_target],
        env=env,
        encoding="utf-8",
        timeout=240,
    )
    terminal.expect(r"ETA (-:--:--|\d+:\d\d:\d\d)")  # the bar, drawn while the files are read
    terminal.expect(r"indexed 8, unchanged 0, removed 0")
    terminal.expect(pexpect.EOF)
    terminal.close()

    assert terminal.exitstatus == 0
