"""Talk to an interactive Python: drive ``python3 -i`` on a terminal, prompt by prompt.

The REPL runs on a pseudo-terminal (``pty=True``), so it behaves as it does for a person: it
prints its ``>>>`` prompt, answers each line, and exits on end of file (Ctrl-D, which
``close_stdin()`` sends). ``expect`` waits for the prompt between questions; ``write`` asks.
The terminal starts with echo off, so what we write does not come back as output, and its size
is ours to choose (``pty_size``) and change (``resize``): the REPL sees it
(``os.get_terminal_size``).

The conversation runs from sync code, then again from asyncio and from trio with the async
forms (``awrite``, ``aexpect``): the same child-owner does the work in each case.

Run: ``python examples/talk_to_python.py``
"""

from __future__ import annotations

import re
import sys

import anyio

from procfound import ManagedProcess

PROMPT = ">>> "
# What the REPL prints for a value: one line, then the next prompt. Its terminal ends lines
# with "\r\n" (expect sees the output as written), hence the optional "\r".
ANSWER = re.compile(r"(.*?)\r?\n")
QUESTIONS = ["6 * 7", "sum(range(101))", "'procfound'.upper()", "2 ** 100"]


def repl() -> ManagedProcess:
    # -q: no banner. The classic REPL (Python 3.13's new one redraws the line as you type),
    # and no start-up file of the user's.
    return ManagedProcess(
        [sys.executable, "-q", "-i"],
        env={"PYTHON_BASIC_REPL": "1", "PYTHONSTARTUP": None},
        pty=True,
        pty_size=(30, 100),
    )


def ask(python: ManagedProcess, question: str) -> str:
    python.write(question + "\n")
    answer = python.expect(ANSWER).match.group(1)
    python.expect(PROMPT)
    return answer


def talk_from_sync_code() -> None:
    with repl() as python:
        python.expect(PROMPT)
        for question in QUESTIONS:
            print(f"sync:    {question} -> {ask(python, question)}")
        python.write("import os; os.get_terminal_size()\n")
        print("sync:    terminal", python.expect(ANSWER).match.group(1))
        python.expect(PROMPT)
        python.resize(40, 132)
        python.write("os.get_terminal_size()\n")
        print("sync:    resized", python.expect(ANSWER).match.group(1))
        python.expect(PROMPT)
        python.close_stdin()  # Ctrl-D at the prompt: the REPL exits
        assert python.process is not None
        print("sync:    python exited with", python.process.wait(timeout=10))


async def talk_from_async_code(backend: str) -> None:
    async with repl() as python:
        await python.aexpect(PROMPT)
        for question in QUESTIONS[:2]:
            await python.awrite(question + "\n")
            found = await python.aexpect(ANSWER)
            await python.aexpect(PROMPT)
            print(f"{backend + ':':8} {question} -> {found.match.group(1)}")
        # A list: the first pattern found in the output wins, and says which it was.
        await python.awrite("1 / 0\n")
        found = await python.aexpect(["ZeroDivisionError", PROMPT])
        print(f"{backend + ':':8} 1 / 0 -> pattern {found.index}: {found.match.group()}")
        await python.aexpect(PROMPT)
        await python.aclose_stdin()


def main() -> None:
    talk_from_sync_code()
    anyio.run(talk_from_async_code, "asyncio", backend="asyncio")
    anyio.run(talk_from_async_code, "trio", backend="trio")


if __name__ == "__main__":
    main()
