"""Event and payload shapes of a chat-messages answer (chat, agent-chat, advanced-chat), per Dify version.

Key order and fields follow the recordings (01, 27, 32, 70, 80, 83 of tests/data/dify-0.15.3 and dify-1.12.1).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from tests.fakes.fake_dify_models import new_id

_UPSTREAM = (
    'API request failed with status code 500: {"error": {"message": "fake upstream failure", "type": "server_error"}}'
)
MODEL_ERROR_015 = f"[openai_api_compatible] Error: {_UPSTREAM}"
_PLUGIN_TEXT = f"[models] Error: {_UPSTREAM}"
PLUGIN_ERROR_JSON = json.dumps(
    {"args": {"description": _PLUGIN_TEXT}, "error_type": "InvokeError", "message": _PLUGIN_TEXT}, separators=(",", ":")
)


def plugin_error() -> str:
    """1.12's blocking / workflow-node failure text: req_id + PluginInvokeError + JSON (recordings 33, 83)."""
    return f"req_id: {secrets.token_hex(5)} PluginInvokeError: {PLUGIN_ERROR_JSON}"


class Events:
    """Builds the dicts of one answer; `v1` selects the 1.12 shapes."""

    def __init__(self, *, v1: bool, mode: str, query: str, user: str, conversation_id: str, inputs: dict) -> None:
        self.v1, self.mode, self.query, self.user = v1, mode, query, user
        self.conversation_id, self.inputs = conversation_id, inputs
        self.message_id, self.task_id = new_id(), new_id()
        self.workflow_run_id, self.workflow_id, self.app_id = new_id(), new_id(), new_id()
        self.created_at = int(time.time())
        self.started = time.monotonic()
        self._nodes: dict[str, str] = {}

    def _base(self, event: str) -> dict[str, Any]:
        return {
            "event": event,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "created_at": self.created_at,
            "task_id": self.task_id,
        }

    # ---- chat / agent ------------------------------------------------------------------

    def delta(self, text: str) -> dict[str, Any]:
        if self.mode == "agent-chat":
            return {**self._base("agent_message"), "id": self.message_id, "answer": text}
        selector = ["llm", "text"] if self.mode == "advanced-chat" else None
        return {**self._base("message"), "id": self.message_id, "answer": text, "from_variable_selector": selector}

    def agent_thought(self, answer: str) -> dict[str, Any]:
        thought = f"I can answer directly.{answer}" if self.v1 else ""
        tool_input = json.dumps({"Final Answer": answer}) if self.v1 else ""
        return {
            **self._base("agent_thought"), "id": new_id(), "position": 1, "thought": thought, "observation": "",
            "tool": "", "tool_labels": {}, "tool_input": tool_input, "message_files": [],
        }

    def message_file(self, extra: dict[str, Any]) -> dict[str, Any]:
        file = {"id": new_id(), "type": "image", "belongs_to": "assistant", "url": "http://127.0.0.1/files/fake.png"}
        return {**self._base("message_file"), **file, **extra}

    def message_replace(self, text: str) -> dict[str, Any]:
        return {**self._base("message_replace"), "answer": text, "reason": "output_moderation"}

    def usage(self, completion_tokens: int, stopped: bool = False) -> dict[str, Any]:
        prompt = 0 if stopped and self.v1 else 10 + len(self.query.split())
        completion = 0 if stopped and self.v1 else completion_tokens
        price = "0" if self.v1 and not stopped else "0E-7"
        usage: dict[str, Any] = {
            "prompt_tokens": prompt, "prompt_unit_price": "0", "prompt_price_unit": "0", "prompt_price": price,
            "completion_tokens": completion, "completion_unit_price": "0", "completion_price_unit": "0",
            "completion_price": price, "total_tokens": prompt + completion, "total_price": price, "currency": "USD",
            "latency": round(time.monotonic() - self.started, 6),
        }
        if self.v1:
            usage.update(time_to_first_token=None, time_to_generate=None)
        return usage

    def metadata(self, completion_tokens: int, resources: list[dict] | None, stopped: bool = False) -> dict[str, Any]:
        usage = self.usage(completion_tokens, stopped)
        if self.v1:
            return {"annotation_reply": None, "retriever_resources": resources or [], "usage": usage}
        return {"retriever_resources": resources, "usage": usage} if resources else {"usage": usage}

    def message_end(self, metadata: dict[str, Any]) -> dict[str, Any]:
        files: list | None = [] if self.mode == "advanced-chat" else None
        return {**self._base("message_end"), "id": self.message_id, "metadata": metadata, "files": files}

    def error(self, code: str, status: int, message: str) -> dict[str, Any]:
        base = self._base("error")
        del base["task_id"]  # error events carry no task_id (recordings 32, 83)
        return {**base, "code": code, "status": status, "message": message}

    def blocking(self, answer: str, metadata: dict[str, Any]) -> dict[str, Any]:
        return {
            "event": "message", "task_id": self.task_id, "id": self.message_id, "message_id": self.message_id,
            "conversation_id": self.conversation_id, "mode": self.mode, "answer": answer, "metadata": metadata,
            "created_at": self.created_at,
        }

    # ---- advanced-chat (chatflow) --------------------------------------------------------

    def _sys(self, dialogue_count: int, with_conversation: bool) -> dict[str, Any]:
        if self.v1:
            sys: dict[str, Any] = {
                "sys.files": [], "sys.user_id": self.user, "sys.app_id": self.app_id,
                "sys.workflow_id": self.workflow_id, "sys.workflow_run_id": self.workflow_run_id,
                "sys.query": self.query,
            }
            if with_conversation:
                sys["sys.conversation_id"] = self.conversation_id
            sys["sys.dialogue_count"] = dialogue_count + 1
        else:
            sys = {
                "sys.query": self.query, "sys.files": [], "sys.conversation_id": self.conversation_id,
                "sys.user_id": self.user, "sys.dialogue_count": dialogue_count, "sys.app_id": self.app_id,
                "sys.workflow_id": self.workflow_id, "sys.workflow_run_id": self.workflow_run_id,
            }
        return {**self.inputs, **sys}

    def _wf(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        return {**self._base(event), "workflow_run_id": self.workflow_run_id, "data": data}

    def workflow_started(self, dialogue_count: int) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.workflow_run_id, "workflow_id": self.workflow_id}
        if not self.v1:
            data["sequence_number"] = dialogue_count + 1
        data.update(inputs=self._sys(dialogue_count, with_conversation=False), created_at=self.created_at)
        return self._wf("workflow_started", data)

    def _node_head(self, node: str) -> dict[str, Any]:
        index, pred = {"start": (1, None), "llm": (2, "start"), "answer": (3, "llm")}[node]
        if self.v1:
            index, pred = 1, None
        exec_id = self._nodes.setdefault(node, new_id())
        return {"id": exec_id, "node_id": node, "node_type": node, "title": node.title() if node != "llm" else "LLM",
                "index": index, "predecessor_node_id": pred}

    def node_started(self, node: str) -> dict[str, Any]:
        data = {**self._node_head(node), "inputs": None}
        if self.v1:
            data.update(inputs_truncated=False, created_at=self.created_at, extras={}, iteration_id=None,
                        loop_id=None, agent_strategy=None)
        else:
            data.update(created_at=self.created_at, extras={}, parallel_id=None, parallel_start_node_id=None,
                        parent_parallel_id=None, parent_parallel_start_node_id=None, iteration_id=None,
                        parallel_run_id=None)
        return self._wf("node_started", data)

    def node_finished(self, node: str, *, dialogue_count: int = 0, answer: str = "", error: str | None = None,
                      tokens: int = 0) -> dict[str, Any]:
        inputs: dict[str, Any] | None = {} if self.v1 else None
        process: dict[str, Any] | None = {} if self.v1 else None
        outputs: dict[str, Any] | None
        if node == "start":
            inputs = outputs = self._sys(dialogue_count, with_conversation=True)
        elif node == "llm":
            process, outputs = self._llm_data(answer, tokens)
        else:
            outputs = {"answer": answer, "files": []}
        if error is not None:
            outputs = {} if self.v1 else None
            process = {} if self.v1 else process
        data: dict[str, Any] = {**self._node_head(node), "inputs": inputs}
        if self.v1:
            data.update(inputs_truncated=False, process_data=process, process_data_truncated=False, outputs=outputs,
                        outputs_truncated=False)
        else:
            data.update(process_data=process, outputs=outputs)
        metadata = {"total_tokens": tokens, "total_price": "0" if self.v1 else "0.0000000", "currency": "USD"}
        data.update(status="failed" if error else "succeeded", error=error, elapsed_time=0.01,
                    execution_metadata=metadata if node == "llm" and not error else None,
                    created_at=self.created_at, finished_at=int(time.time()), files=[])
        if self.v1:
            data.update(iteration_id=None, loop_id=None)
        else:
            data.update(parallel_id=None, parallel_start_node_id=None, parent_parallel_id=None,
                        parent_parallel_start_node_id=None, iteration_id=None)
        return self._wf("node_finished", data)

    def _llm_data(self, answer: str, tokens: int) -> tuple[dict[str, Any], dict[str, Any]]:
        prompts = [{"role": "system", "text": "You are the fake chatflow.", "files": []},
                   {"role": "user", "text": self.query, "files": []}]
        usage = self.usage(tokens)
        if self.v1:
            process = {"model_mode": "chat", "prompts": prompts, "usage": usage, "finish_reason": "stop",
                       "model_provider": "langgenius/openai_api_compatible/openai_api_compatible",
                       "model_name": "fake-gpt"}
            return process, {"text": answer, "reasoning_content": "", "usage": usage, "finish_reason": "stop"}
        process = {"model_mode": "chat", "prompts": prompts, "model_provider": "openai_api_compatible",
                   "model_name": "fake-gpt"}
        return process, {"text": answer, "usage": usage, "finish_reason": "stop"}

    def workflow_finished(self, status: str, answer: str, *, dialogue_count: int = 0, error: str | None = None,
                          tokens: int = 0, steps: int = 3) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.workflow_run_id, "workflow_id": self.workflow_id}
        if not self.v1:
            data["sequence_number"] = dialogue_count + 1
        if status == "succeeded":
            outputs: dict[str, Any] | None = {"answer": answer, "files": []} if self.v1 else {"answer": answer}
        else:
            outputs = {} if self.v1 else None
        data.update(
            status=status, outputs=outputs, error=error, elapsed_time=round(time.monotonic() - self.started, 6),
            total_tokens=tokens, total_steps=steps, created_by={"id": new_id(), "user": self.user},
            created_at=self.created_at, finished_at=int(time.time()),
            exceptions_count=1 if (error and self.v1) else 0, files=[],
        )
        return self._wf("workflow_finished", data)
