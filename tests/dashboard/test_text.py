"""Names, tags, params and errors are shown as the text they are: on no page do they render
as a link, an image or HTML (a fake "Session expired" link, a tracking pixel); a run's
notes are Markdown on purpose, with images shown as links.

What Streamlit would render is judged by a CommonMark parser (markdown-it-py; Streamlit's
renderer is CommonMark too), plus the GFM autolinks (a bare ``http://``) CommonMark lacks."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as hs
from markdown_it import MarkdownIt

import mltrail
from mltrail.dashboard.text import code, md, notes
from tests.factories import ab_spec, quiet_run, rendered_page

LINK = "[Session expired: sign in again](http://evil.example/login) ![x](http://evil.example/p.png)"
HTML = "<img src=x onerror=alert(1)>"
NOTES = "Trained **twice**: see [the docs](http://docs.example/ok) ![pixel](http://evil.example/n.png)"
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
BARE_URL = re.compile(r"(?<![(\\])\b(https?://|www\.)")  # an autolink GFM would make (not a link's target)


def live(markdown: str) -> set[str]:
    """What in ``markdown`` would render as more than text: each link's and image's target,
    raw HTML, and bare URLs."""
    found = {f"bare url in {markdown!r}"} if BARE_URL.search(markdown) else set()
    stack = list(PARSER.parse(markdown))
    while stack:
        token = stack.pop()
        stack += token.children or []
        if token.type == "link_open":
            found.add(f"link {token.attrs['href']}")
        elif token.type == "image":
            found.add(f"image {token.attrs['src']}")
        elif token.type in ("html_inline", "html_block"):
            found.add(f"html {token.content}")
    return found


def shown(at) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    texts = [e.value for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning",
                                  "info", "success") for e in getattr(at, kind)]
    texts += [e.label for kind in ("button", "expander", "metric", "number_input", "selectbox", "text_input")
              for e in at.get(kind) if hasattr(e, "label")]
    return texts


# -- the helper ----------------------------------------------------------------------------


@given(hs.text(hs.characters(blacklist_characters="\x00"), max_size=60))
def test_any_text_through_md_parses_back_to_itself_as_plain_text(text: str) -> None:
    tokens = PARSER.parse(md(text))
    if not text.split():
        assert tokens == []
        return
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], md(text)
    children = tokens[1].children
    assert {c.type for c in children} <= {"text"}, (md(text), children)
    # (the word joiners md puts into URL-like text to keep it from autolinking are invisible)
    assert "".join(c.content for c in children).replace("\u2060", "").split() == text.split()


@given(hs.text(hs.characters(blacklist_characters="\x00\r\n"), min_size=1, max_size=40).filter(str.strip))
def test_any_text_through_code_is_one_code_span_of_it(text: str) -> None:
    [paragraph] = [t for t in PARSER.parse(code(text)) if t.type == "inline"]
    assert [c.type for c in paragraph.children] == ["code_inline"], code(text)
    assert paragraph.children[0].content.split() == text.split()


@pytest.mark.parametrize("text", ["see http://evil.example/x", "HTTPS://evil.example", "www.evil.example",
                                  "WWW.evil.example/p", "bob@evil.example"])
def test_md_breaks_what_github_s_autolinks_would_find_after_escapes(text: str) -> None:
    """Streamlit finds ``http://``, ``www.`` and e-mail addresses in text after escapes are
    read (a link appeared in Chromium): md puts an invisible word joiner into each pattern."""
    plain = md(text).replace("\\", "").lower()  # what the escapes read as
    assert "://" not in plain and "www." not in plain, plain
    assert all(plain[i - 1] == plain[i + 1] == "\u2060" for i, c in enumerate(plain) if c == "@"), plain
    assert plain.replace("\u2060", "") == text.lower()


def test_streamlit_s_own_directives_and_formulas_are_escaped_too() -> None:
    assert md(":red[alert] $x^2$ :material/home: :smile:") == \
        r"\:red\[alert\] \$x\^2\$ \:material\/home\: \:smile\:"
    assert md("a\nb\r\n# c") == r"a b \# c"  # one line: no heading, list or quote can start


def test_notes_keep_their_markdown_but_load_no_image() -> None:
    assert live(notes(NOTES)) == {"link http://docs.example/ok", "link http://evil.example/n.png"}
    assert "image" not in str(live(notes("![a](http://e/1) \\![b](http://e/2) \\\\![c](http://e/3)")))


# -- the pages -----------------------------------------------------------------------------


@pytest.fixture
def hostile_store(tmp_path, monkeypatch):
    """Runs, an experiment, a param group, tags and an artifact named to render as Markdown or HTML."""
    store = mltrail.Store(tmp_path / "hostile")
    with quiet_run(store, LINK, name=LINK, description=NOTES, tags={"![t](t.png)": LINK}) as run:
        run.log_params({"lr": 0.1}, group=HTML)
        run.log_metric("loss", 0.5)
        run.log_text("hello", "a`[x](http:evil.example)`.txt")
    with quiet_run(store, LINK, name=HTML, parent=run.id):
        pass
    store.ab.create(ab_spec(hypothesis={"null": LINK, "alternative": HTML}, owner=LINK)).start()
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    return store


@pytest.mark.slow
def test_no_page_renders_a_name_as_a_link_an_image_or_html(hostile_store) -> None:
    runs = hostile_store.search_runs()
    ids = dict(zip(runs["run_name"], runs["run_id"]))
    pages = [rendered_page("run.py", run=ids[LINK]), rendered_page("run.py", run=ids[HTML]),
             rendered_page("runs.py", selected_runs=list(ids.values())),
             rendered_page("compare.py", selected_runs=list(ids.values())), rendered_page("ab_experiment.py"),
             rendered_page("ab_experiments.py")]
    runs_page = pages[2]
    runs_page.selectbox(key="experiment").set_value(LINK).run()
    pages.append(runs_page)
    for at in pages:
        assert not at.exception, [e.value for e in at.exception]
        for text in shown(at):
            found = live(text)
            assert found <= {"link http://docs.example/ok", "link http://evil.example/n.png"}, (text, found)
    run_page = "\n".join(shown(pages[0]))
    assert md(LINK) in run_page  # the name, as text
    assert "link http://docs.example/ok" in live(run_page)  # the notes, as Markdown
    assert any(md(LINK) in button.label for button in runs_page.button)  # the child-run button, its parent as text
