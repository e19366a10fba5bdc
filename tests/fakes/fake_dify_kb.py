"""Knowledge (dataset) endpoints of the fake Dify server; shapes follow recordings 40-57 of both versions.

Version differences kept: unknown dataset on create (0.15 400 "Dataset is not exist." after body checks,
1.12 404 before them), create_by_file without `data` (0.15 400 pydantic KnowledgeConfig, 1.12 defaults),
document delete (0.15 200 {"result"}, 1.12 204), GET /datasets/{id} (1.x only; 0.15 answers 405).
Like Dify, a new document with the name of an existing one replaces it (same id, new batch).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from tests.fakes.fake_dify_models import DOCUMENT_EXTENSIONS, Dataset, Document, UploadedFile, new_id
from tests.fakes.fake_dify_wire import Ctx, validation_message

ORDER = ["waiting", "parsing", "cleaning", "splitting", "indexing", "completed"]
DISPLAY = {"waiting": "queuing", "completed": "available", "error": "error", "paused": "paused"}
DOC_FORMS = ("text_model", "hierarchical_model", "qa_model")


class DocumentTextCreatePayload(BaseModel):
    """Dify 1.12's create-by-text body model."""

    name: str
    text: str
    process_rule: dict[str, Any] | None = None
    original_document_id: str | None = None
    doc_form: str = "text_model"
    doc_language: str = "English"
    indexing_technique: str | None = None
    retrieval_model: dict[str, Any] | None = None
    embedding_model: str | None = None
    embedding_model_provider: str | None = None


class KnowledgeConfig(BaseModel):
    """Dify 0.15's KnowledgeConfig: indexing_technique is required even when the dataset has one (recording 57)."""

    indexing_technique: Literal["high_quality", "economy"]
    data_source: dict[str, Any] | None = None
    process_rule: dict[str, Any] | None = None
    doc_form: str = "text_model"
    doc_language: str = "English"


# ---- JSON shapes --------------------------------------------------------------------------------


def dataset_json(ctx: Ctx, ds: Dataset) -> dict[str, Any]:
    fake, v1 = ctx.fake, ctx.wire.v1
    hq = ds.indexing_technique == "high_quality"
    provider = "langgenius/openai_api_compatible/openai_api_compatible" if v1 else "openai_api_compatible"
    words = sum(len(d.text) for d in ds.documents.values())
    body: dict[str, Any] = {
        "id": ds.id, "name": ds.name, "description": ds.description, "provider": "vendor", "permission": "only_me",
        "data_source_type": "upload_file" if ds.documents else None, "indexing_technique": ds.indexing_technique,
        "app_count": 0, "document_count": len(ds.documents), "word_count": words, "created_by": fake.account_id,
    }
    if v1:
        body["author_name"] = "admin"
    body.update({
        "created_at": ds.created_at, "updated_by": fake.account_id, "updated_at": ds.created_at,
        "embedding_model": "fake-embed" if hq else None, "embedding_model_provider": provider if hq else None,
        "embedding_available": True, "retrieval_model_dict": {
            "search_method": "semantic_search", "reranking_enable": False, "reranking_mode": None,
            "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""}, "weights": None,
            "top_k": 2, "score_threshold_enabled": False, "score_threshold": None},
    })
    if v1:
        body["summary_index_setting"] = {"enable": None, "model_name": None, "model_provider_name": None,
                                         "summary_prompt": None}
    body.update({
        "tags": [], "doc_form": "text_model" if ds.documents else None,
        "external_knowledge_info": {"external_knowledge_id": None, "external_knowledge_api_id": None,
                                    "external_knowledge_api_name": None, "external_knowledge_api_endpoint": None},
        "external_retrieval_model": {"top_k": 2, "score_threshold": 0.0, "score_threshold_enabled": None},
    })
    if v1:
        available = sum(1 for d in ds.documents.values() if d.status == "completed")
        body.update({
            "doc_metadata": [], "built_in_field_enabled": False, "pipeline_id": None, "runtime_mode": "general",
            "chunk_structure": None, "icon_info": {"icon_type": None, "icon": None, "icon_background": None,
                                                   "icon_url": None},
            "is_published": False, "total_documents": len(ds.documents), "total_available_documents": available,
            "enable_api": ds.enable_api, "is_multimodal": False,
        })
    return body


def document_json(ctx: Ctx, doc: Document) -> dict[str, Any]:
    v1, status, up = ctx.wire.v1, doc.status, doc.file
    done = status == "completed"
    counted: int | None = len(doc.text) if done else (None if v1 else 0)
    body: dict[str, Any] = {
        "id": doc.id, "position": doc.position, "data_source_type": "upload_file",
        "data_source_info": {"upload_file_id": up.id},
        "data_source_detail_dict": {"upload_file": {
            "id": up.id, "name": up.name, "size": len(up.content), "extension": up.extension or "txt",
            "mime_type": up.mime_type, "created_by": ctx.fake.account_id, "created_at": up.created_at}},
        "dataset_process_rule_id": doc.process_rule_id, "name": doc.name, "created_from": "api",
        "created_by": ctx.fake.account_id, "created_at": doc.created_at, "tokens": 0 if done else counted,
        "indexing_status": status, "error": doc.error, "enabled": True, "disabled_at": None, "disabled_by": None,
        "archived": False, "display_status": DISPLAY.get(status, "indexing"), "word_count": counted, "hit_count": 0,
        "doc_form": doc.doc_form,
    }
    if v1:
        body.update(doc_metadata=None, summary_index_status=None, need_summary=False)
    return body


def status_json(doc: Document) -> dict[str, Any]:
    status, t = doc.status, doc.created_at
    rank = len(ORDER) if status == "error" else ORDER.index(status) if status in ORDER else 0
    total = doc.total_segments if rank >= ORDER.index("splitting") else 0
    return {
        "id": doc.id, "indexing_status": status, "processing_started_at": t if rank >= 1 else None,
        "parsing_completed_at": t if rank >= 2 else None, "cleaning_completed_at": t if rank >= 3 else None,
        "splitting_completed_at": t if rank >= 4 else None, "completed_at": t if status == "completed" else None,
        "paused_at": None, "error": doc.error, "stopped_at": t if status == "error" else None,
        "completed_segments": total if status == "completed" else 0, "total_segments": total,
    }


# ---- helpers ----------------------------------------------------------------------------------


def _lookup(ctx: Ctx, *, create: bool) -> Dataset | web.Response:
    """The dataset of the URL, or the version's error answer (unknown / API access disabled)."""
    ds = ctx.fake.datasets.get(ctx.params["dsid"])
    if ds is None:
        if create and not ctx.wire.v1:
            return ctx.wire.invalid("Dataset is not exist.")
        return ctx.wire.error(404, "not_found", "Dataset not found.", ctx.path)
    if not ds.enable_api:
        return ctx.wire.error(403, "forbidden", "Dataset api access is not enabled.")
    return ds


def _check_options(ctx: Ctx, ds: Dataset, args: dict[str, Any]) -> web.Response | None:
    if args.get("doc_form", "text_model") not in DOC_FORMS:
        return ctx.wire.invalid("Invalid doc_form.")
    technique = args.get("indexing_technique")
    if not ds.indexing_technique and not technique:
        return ctx.wire.invalid("indexing_technique is required.")
    return None


def _add_document(ctx: Ctx, ds: Dataset, up: UploadedFile, doc_form: str, technique: str | None) -> web.Response:
    if not ds.indexing_technique and technique:
        ds.indexing_technique = technique
    batch = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"{random.randrange(10**6):06d}"
    steps = list(ctx.fake.indexing_steps)
    same = next((d for d in ds.documents.values() if d.name == up.name), None)
    if same is not None:  # Dify's duplicate handling: re-index the existing document (1.12 recording 57)
        same.file, same.batch, same.polls, same.steps, same.doc_form = up, batch, 0, steps, doc_form
        doc = same
    else:
        position = max((d.position for d in ds.documents.values()), default=0) + 1
        doc = Document(id=new_id(), name=up.name, position=position, batch=batch, file=up, steps=steps,
                       doc_form=doc_form)
        ds.documents[doc.id] = doc
    ctx.fake._order(doc.id)
    return ctx.wire.json({"document": document_json(ctx, doc), "batch": batch})


# ---- handlers ----------------------------------------------------------------------------------


async def list_datasets(ctx: Ctx) -> web.Response:
    page, limit = int(ctx.query.get("page") or 1), int(ctx.query.get("limit") or 20)
    items = sorted(ctx.fake.datasets.values(), key=lambda d: ctx.fake._order(d.id), reverse=True)
    chunk = items[(page - 1) * limit: page * limit]
    return ctx.wire.json({"data": [dataset_json(ctx, d) for d in chunk], "has_more": page * limit < len(items),
                          "limit": limit, "total": len(items), "page": page})


async def create_dataset(ctx: Ctx) -> web.Response:
    body, wire = ctx.body, ctx.wire
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 40:
        message = "type is required. Name must be between 1 to 40 characters."
        return wire.invalid(message) if wire.v1 else wire.reqparse_error(message, "name")
    if any(d.name == name for d in ctx.fake.datasets.values()):
        return wire.error(409, "dataset_name_duplicate",
                          "The dataset name already exists. Please modify your dataset name.")
    dsid = ctx.fake.add_dataset(name=name, indexing_technique=body.get("indexing_technique"))
    ds = ctx.fake.datasets[dsid]
    ds.description = str(body.get("description") or "")
    return wire.json(dataset_json(ctx, ds))


async def get_dataset(ctx: Ctx) -> web.Response:
    if not ctx.wire.v1:
        return ctx.wire.method_not_allowed()  # 0.15.3 has only DELETE on /datasets/{id}
    ds = _lookup(ctx, create=False)
    return ds if isinstance(ds, web.Response) else ctx.wire.json(dataset_json(ctx, ds))


async def create_by_text(ctx: Ctx) -> web.Response:
    body, wire = ctx.body, ctx.wire
    ds = _lookup(ctx, create=True) if wire.v1 else None
    if isinstance(ds, web.Response):
        return ds
    if wire.v1:
        if message := validation_message(DocumentTextCreatePayload, body):
            return wire.invalid(message)
    else:
        for name in ("name", "text"):
            if name not in body or body[name] is None:
                return wire.reqparse_error("Missing required parameter in the JSON body", name)
        ds = _lookup(ctx, create=True)
        if isinstance(ds, web.Response):
            return ds
    assert isinstance(ds, Dataset)
    if (problem := _check_options(ctx, ds, body)) is not None:
        return problem
    name, text = str(body["name"]), str(body["text"])
    up = UploadedFile(id=new_id(), name=name, content=text.encode(), mime_type="text/plain", user="dataset-api")
    return _add_document(ctx, ds, up, body.get("doc_form") or "text_model", body.get("indexing_technique"))


async def create_by_file(ctx: Ctx) -> web.Response:
    wire, fake = ctx.wire, ctx.fake
    ds = _lookup(ctx, create=True)
    if isinstance(ds, web.Response):
        return ds
    try:
        args = json.loads((ctx.form or {}).get("data") or "{}")
    except ValueError:
        return wire.invalid("Invalid JSON in the data field.")
    if not isinstance(args, dict):
        return wire.invalid("Invalid JSON in the data field.")
    if (problem := _check_options(ctx, ds, args)) is not None:
        return problem
    if "file" not in ctx.files:
        return wire.error(400, "no_file_uploaded", "Please upload your file.")
    if ctx.file_count > 1:
        return wire.error(400, "too_many_files", "Only one file is allowed.")
    filename, content, mime = ctx.files["file"]
    if not filename:
        return wire.error(400, "filename_not_exists_error", "The specified filename does not exist.")
    up = UploadedFile(id=new_id(), name=filename, content=content, mime_type=mime or "application/octet-stream",
                      user="dataset-api")
    if up.extension not in DOCUMENT_EXTENSIONS:
        return wire.invalid("")  # recording 56: UnsupportedFileTypeError has an empty message
    if len(content) > fake.upload_limit_mb * 1024 * 1024:
        return wire.error(413, "file_too_large",
                          f"File size exceeded. {len(content) / 1024 / 1024:.2f} MB > {fake.upload_limit_mb:g} MB")
    if not wire.v1:
        config = {"doc_form": "text_model", "doc_language": "English", **args, "data_source": {
            "type": "upload_file", "info_list": {"data_source_type": "upload_file",
                                                 "file_info_list": {"file_ids": [up.id]}}}}
        if message := validation_message(KnowledgeConfig, config, pydantic_version="2.9"):
            return wire.invalid(message)
    fake.uploads[up.id] = up
    return _add_document(ctx, ds, up, args.get("doc_form") or "text_model", args.get("indexing_technique"))


async def indexing_status(ctx: Ctx) -> web.Response:
    ds = _lookup(ctx, create=False)
    if isinstance(ds, web.Response):
        return ds
    docs = [d for d in ds.documents.values() if d.batch == ctx.params["batch"]]
    if not docs:
        return ctx.wire.error(404, "not_found", "Documents not found.", ctx.path)
    for doc in docs:
        doc.polls += 1
    return ctx.wire.json({"data": [status_json(d) for d in docs]})


async def list_documents(ctx: Ctx) -> web.Response:
    ds = _lookup(ctx, create=False)
    if isinstance(ds, web.Response):
        return ds
    page, limit = int(ctx.query.get("page") or 1), min(int(ctx.query.get("limit") or 20), 100)
    items = sorted(ds.documents.values(), key=lambda d: ctx.fake._order(d.id), reverse=True)
    if keyword := ctx.query.get("keyword"):
        items = [d for d in items if keyword.lower() in d.name.lower()]
    chunk = items[(page - 1) * limit: page * limit]
    return ctx.wire.json({"data": [document_json(ctx, d) for d in chunk], "has_more": page * limit < len(items),
                          "limit": limit, "total": len(items), "page": page})


async def delete_document(ctx: Ctx) -> web.Response:
    ds = _lookup(ctx, create=True)
    if isinstance(ds, web.Response):
        return ds
    doc = ds.documents.get(ctx.params["docid"])
    if doc is None:
        return ctx.wire.error(404, "not_found", "Document Not Exists.", ctx.path)
    if doc.status in ORDER[1:5]:
        return ctx.wire.error(400, "document_indexing", "Cannot delete document during indexing.")
    del ds.documents[doc.id]
    return ctx.wire.no_content() if ctx.wire.v1 else ctx.wire.success()
