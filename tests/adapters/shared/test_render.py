"""Splitting long answers: never inside a code block, nothing lost, every part within the limit."""

import re

import pytest

from adapters.shared.render import close_open_fence, split_markdown, with_footer


def _norm(text: str) -> str:
    return re.sub(r"\s+|```[a-z]*", "", text)


def _long_answer(paragraphs: int = 40) -> str:
    parts = []
    for i in range(paragraphs):
        if i % 5 == 2:
            body = "\n".join(f"    value_{j} = compute({j})  # step {j}" for j in range(60 + i))
            parts.append(f"```python\n{body}\n```")
        else:
            parts.append(" ".join(f"word{i}_{j}" for j in range(120)))
    return "\n\n".join(parts)


@pytest.mark.parametrize("limit", [4096, 3000, 12000])
def test_parts_fit_keep_code_blocks_closed_and_lose_nothing(limit):
    text = _long_answer()
    parts = split_markdown(text, limit)
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= limit
        assert part.count("```") % 2 == 0, "a part cut a code block open"
    assert _norm("\n".join(parts)) == _norm(text)


def test_short_text_is_one_part():
    assert split_markdown("hello", 10) == ["hello"]


def test_oversize_code_block_becomes_several_complete_blocks():
    code = "```sql\n" + "\n".join(f"SELECT {i};" for i in range(2000)) + "\n```"
    parts = split_markdown(code, 1000)
    assert len(parts) > 10
    assert all(p.startswith("```sql\n") and p.endswith("```") and len(p) <= 1000 for p in parts)


def test_split_prefers_paragraph_boundaries():
    text = ("a" * 60 + "\n\n") * 10
    parts = split_markdown(text, 200)
    assert all(set(p.replace("\n", "")) == {"a"} for p in parts)
    assert all(len(p.replace("\n", "")) % 60 == 0 for p in parts)


def test_utf16_measure_is_respected():
    text = "😀" * 5000
    parts = split_markdown(text, 4096, size=lambda s: len(s.encode("utf-16-le")) // 2)
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert "".join(parts) == text


def test_close_open_fence_and_footer():
    assert close_open_fence("x\n```py\ncode").endswith("\n```")
    assert close_open_fence("```\na\n```") == "```\na\n```"
    assert with_footer("partial", "_stopped: x_") == "partial\n\n_stopped: x_"
    assert with_footer("", "_stopped: x_") == "_stopped: x_"
