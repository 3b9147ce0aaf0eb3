"""What each function may do (template.yaml's policies) and what its code calls (traced by hand).

`granted(logical_id)` reads a function's `Policies` from template.yaml as (resource, action)
pairs: explicit statements whose Resource is `!GetAtt X.Arn` or `!Sub "${X.Arn}/index/name"`,
and the SAM policy templates used here (SQS send, Secrets Manager read); plus the statements of
any `AWS::IAM::Policy` attached to the function's role (`<LogicalId>Role`). API Gateway's
management paths are named `apigateway:/apikeys`, a usage plan's keys `<Plan>/keys`.

`USES` is the same thing derived from the code: the storage modules
(layers/segmentation/segmentation/storage/*) are the only AWS callers, and each function's
app.py decides which of them it reaches. The comments name the paths. The packaging test
holds `granted == USES`; the e2e test records every call the local stack's functions make
(infra/local/calls.py) and holds it within both.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]

Grant = tuple[str, str]  # (resource as the template names it, IAM action)

# KMS is allowed only through a service (kms:ViaService): the resource is "DataKey via <service>".
_KMS_TABLES = "kms:Decrypt kms:Encrypt kms:GenerateDataKey* kms:DescribeKey"


@cache
def template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse((REPO / "template.yaml").read_text())
    return parsed


def functions() -> list[str]:
    return sorted(
        rid for rid, r in template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    )


def _resource_name(resource: Any) -> str:
    if resource == "*":
        return "*"  # only for actions with no resource to name (SES GetAccount): see _statement_grants
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return str(target)
    if isinstance(resource, dict) and "Fn::Sub" in resource and isinstance(resource["Fn::Sub"], str):
        text = resource["Fn::Sub"]
        if text.startswith("${") and ".Arn}" in text:
            target, rest = text[2:].split(".Arn}", 1)
            return target + rest
        if ":ses:" in text and text.endswith(":identity/*"):
            return "ses:identity"
        if ":ses:" in text and ":configuration-set/" in text:
            return "ses:configuration-set"
        if ":apigateway:" in text:
            path = text.rsplit("::", 1)[1]
            plan_keys = re.fullmatch(r"/usageplans/\$\{(\w+)\}/keys", path)
            return f"{plan_keys.group(1)}/keys" if plan_keys else f"apigateway:{path}"
    raise AssertionError(f"a Resource this test cannot name: {resource!r}")


def _statement_grants(statement: dict[str, Any]) -> set[Grant]:
    assert statement["Effect"] == "Allow", statement
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    names = {_resource_name(resource) for resource in resources}
    if "*" in names:
        assert actions == ["ses:GetAccount"], f"a '*' resource for more than SES GetAccount: {statement}"
        names = {"ses:account"}
    via = (statement.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService")
    if any(str(action).startswith("kms:") for action in actions):
        assert via is not None, f"KMS granted without kms:ViaService: {statement}"
        service = str(via["Fn::Sub"]).split(".", 1)[0]
        names = {f"{name} via {service}" for name in names}
    return {(name, str(action)) for name in names for action in actions}


def granted(logical_id: str) -> set[Grant]:
    props = template()["Resources"][logical_id]["Properties"]
    grants: set[Grant] = set()
    for policy in props.get("Policies", []):
        if isinstance(policy, str):
            raise AssertionError(f"{logical_id}: managed policy {policy} grants more than this test can see")
        ((kind, spec),) = policy.items()
        if kind == "Statement":
            for statement in spec:
                grants |= _statement_grants(statement)
        elif kind == "SQSSendMessagePolicy":
            queue, attribute = spec["QueueName"]["Fn::GetAtt"]
            assert attribute == "QueueName"
            grants.add((queue, "sqs:SendMessage"))
        elif kind == "AWSSecretsManagerGetSecretValuePolicy":
            grants.add((spec["SecretArn"]["Ref"], "secretsmanager:GetSecretValue"))
        else:
            raise AssertionError(f"{logical_id}: policy template {kind} is not known to this test; add it")
    for resource in template()["Resources"].values():
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": f"{logical_id}Role"} in resource["Properties"]["Roles"]
        ):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                grants |= _statement_grants(statement)
    return grants


def _uses(spec: dict[str, str]) -> set[Grant]:
    """{"UsersTable": "GetItem UpdateItem", "DeliveryQueue": "sqs:SendMessage"} -> pairs."""
    pairs = set()
    for resource, actions in spec.items():
        for action in actions.split():
            pairs.add((resource, action if ":" in action else f"dynamodb:{action}"))
    return pairs


# Building blocks, named after the code that calls AWS.
_WORKSPACE = {"SegmentsTable": "GetItem Scan"}  # definitions.load_workspace: #meta version + scan
# people.evaluable.Evaluator: users get their companies (BatchGet) and companies their user counts.
_RECORDS = {"CompaniesTable": "BatchGetItem", "MembershipsTable": "BatchGetItem"}
# messaging.auto.queue_auto_messages (every users refresh): live set and definitions, the claim
# (Put delivery + Update message counters in one transaction, GetItem of the delivery when the
# condition failed), then the delivery jobs.
_AUTO = {
    "MessagesTable": "GetItem UpdateItem",
    "DeliveriesTable": "PutItem GetItem",
    "DeliveryQueue": "sqs:SendMessage",
}
# storage.membership_writes.apply_update: membership Put/Delete with count Update, the member item's
# conditioned Update (ConditionCheck in earlier chunks) and the definitions' version guard
# (ConditionCheck on Segments); each change's Put in the same transaction (storage.changes), and
# the pair's last sequence (Query) when a guess was taken; upkeep.refresh re-reads a member whose
# write lost (GetItem); RefreshRun.finish parks records that keep failing on the RebuildQueue.
_MEMBERSHIP_WRITES = {
    "MembershipsTable": "PutItem DeleteItem UpdateItem",
    "SegmentsTable": "ConditionCheckItem",
    "ChangesTable": "PutItem Query",
}
_MEMBER_ITEM = "GetItem BatchGetItem UpdateItem ConditionCheckItem"
_PASS = {"RebuildQueue": "sqs:SendMessage"}


def _merge(*specs: dict[str, str]) -> set[Grant]:
    out: set[Grant] = set()
    for spec in specs:
        out |= _uses(spec)
    return out


_KMS_DYNAMODB = {"DataKey via dynamodb": _KMS_TABLES}
# storage.usage_keys: create (find the plans by name once, the API key, its place in its role's
# plan) and delete (also what create does to a key it made when a later step failed).
_USAGE_KEYS = {
    "apigateway:/usageplans": "apigateway:GET",
    "apigateway:/apikeys": "apigateway:POST",
    "apigateway:/apikeys/*": "apigateway:DELETE",
    **{f"{role}UsagePlan/keys": "apigateway:POST" for role in ("Ingest", "Read", "Write", "Admin")},
}

USES: dict[str, set[Grant]] = {
    # auth.access.authenticate_request: key_store.find_by_hash (GetItem); the first admin key and
    # the identity secret from Secrets Manager (storage.secrets); the first admin key is stored as
    # an ordinary key on its first use (put_key_if_absent: PutItem); a key without a usage key
    # gets one (usage_keys.create, set_usage_key: UpdateItem; the loser of a race deletes its own).
    "AuthorizerFunction": _merge(
        {"ApiKeysTable": "GetItem PutItem UpdateItem"},
        _USAGE_KEYS,
        {"IdentitySecret": "secretsmanager:GetSecretValue"},
        {"FirstAdminKeySecret": "secretsmanager:GetSecretValue"},
        _KMS_DYNAMODB,
        {"DataKey via secretsmanager": "kms:Decrypt"},
    ),
    # http.routes.users/companies -> people.users/companies: people_items.upsert (UpdateItem), get,
    # delete, users.record_login (UpdateItem); people.attributes.attribute_changes: types_of
    # (BatchGet) and register (transaction: Update counter + Put names); segments now through
    # people.evaluable (workspace, companies, user counts); the inbox (Query). No membership
    # writes, no messages, no queues: the stream does the rest.
    "IngestFunction": _merge(
        {"UsersTable": "GetItem UpdateItem DeleteItem"},
        {"CompaniesTable": "GetItem UpdateItem DeleteItem"},
        {"DataAttributesTable": "BatchGetItem PutItem UpdateItem"},
        {"InboxTable": "Query"},
        # people.events.record -> storage.events.record: the user's summary (UpdateItem, or a
        # transaction with the id's conditional Put); names registered like attributes.
        {"EventIdsTable": "PutItem"},
        _WORKSPACE,
        _RECORDS,
        _KMS_DYNAMODB,
    ),
    # http.routes.sources (the Segment routes, no authorizer): auth.access.authenticate_key
    # (find_by_hash: GetItem; an unknown key is compared with the first admin key's secret, never
    # stored here); people.segment_ingest: message ids recorded before (BatchGet on EventIds), the
    # attribute types and names first seen (as IngestFunction), the companies read (BatchGet)
    # and upserted in transactions (people_items.upsert_many: Update; a lost race falls back to
    # people_items.upsert: UpdateItem), the users read (BatchGet) and written by
    # storage.user_batches (transactions: Update of each user with the conditional Put of its
    # message ids).
    "SourcesFunction": _merge(
        {"ApiKeysTable": "GetItem"},
        {"FirstAdminKeySecret": "secretsmanager:GetSecretValue"},
        {"DataKey via secretsmanager": "kms:Decrypt"},
        {"UsersTable": "BatchGetItem UpdateItem"},
        {"EventIdsTable": "BatchGetItem PutItem"},
        {"CompaniesTable": "BatchGetItem UpdateItem"},
        {"DataAttributesTable": "BatchGetItem PutItem UpdateItem"},
        _KMS_DYNAMODB,
    ),
    # http.routes.search/segments/messages/api_keys/docs:
    # - segments.search / count: scan_slice (Scan), approximate_count (DescribeTable),
    #   members_page (Query), get_items (BatchGet), counts (GetItem, BatchGet), attribute
    #   types (Query on DataAttributes); the count cache (GetItem, conditional PutItem);
    # - segments.service: create/update/delete (transactions on Segments: Put, Update, Delete),
    #   dependents among messages (Scan); upkeep.build: inline refresh of every record (all of
    #   upkeep's writes and auto messages) or jobs on the RebuildQueue; drop_group (Query,
    #   BatchGet, Delete + member Update, DeleteItem of the count);
    # - messaging.service: put_new, get, listed_page (Query by_listing, BatchGet; once per table
    #   the backfill: GetItem and UpdateItem of #auto_live, scan_all, UpdateItem), change_state
    #   (Update; going live checks the audience's segments: ConditionCheck, and bumps the
    #   segments version: Update), fan-out
    #   job, deliveries page (Query), preview (user GetItem, first company GetItem + user count);
    # - auth.access: create (a usage key, then PutItem), list (Scan), revoke (Query by_id,
    #   UpdateItem, then delete the usage keys). No GetItem.
    # - storage.cursors: page cursors are signed with a key derived from the identity secret.
    # - messaging.workspace_settings: GET/PUT /v1/settings (GetItem, UpdateItem).
    "ApiFunction": _merge(
        {"IdentitySecret": "secretsmanager:GetSecretValue"},
        {"DataKey via secretsmanager": "kms:Decrypt"},
        {"UsersTable": f"Scan DescribeTable {_MEMBER_ITEM}"},
        {"CompaniesTable": f"Scan DescribeTable {_MEMBER_ITEM}"},
        {"SegmentsTable": "GetItem Scan PutItem UpdateItem DeleteItem ConditionCheckItem"},
        {"MembershipsTable": "GetItem BatchGetItem Query PutItem UpdateItem DeleteItem"},
        {
            "MessagesTable": "GetItem BatchGetItem Scan PutItem UpdateItem",
            "MessagesTable/index/by_listing": "Query",
        },
        {"DeliveriesTable": "GetItem Query PutItem"},
        {"DataAttributesTable": "Query"},
        {"CountCacheTable": "GetItem PutItem"},
        {"WorkspaceSettingsTable": "GetItem UpdateItem"},
        {"ApiKeysTable": "Scan PutItem UpdateItem", "ApiKeysTable/index/by_id": "Query"},
        # changes.history: a member's history and a segment's feed (the indexes), the count item and
        # the stats rows (GetItem, Query on Memberships, above), the member (GetItem, above).
        {"ChangesTable/index/by_segment": "Query", "ChangesTable/index/by_member": "Query"},
        # changes.webhooks: an endpoint made or deleted with the count (transactions: Put/Delete +
        # Update), read (GetItem), enabled, disabled or given a new secret (UpdateItem), listed
        # (Query by_listing), its attempts (Query).
        {
            "WebhooksTable": "GetItem PutItem UpdateItem DeleteItem Query",
            "WebhooksTable/index/by_listing": "Query",
        },
        _USAGE_KEYS,
        {"FanoutQueue": "sqs:SendMessage"},
        _AUTO,
        _PASS,
        _MEMBERSHIP_WRITES,
        _KMS_DYNAMODB,
        # people.tags / segments.tags: create (transaction: Put tag and guard), get, list (Scan),
        # counts (BatchGet on Memberships), delete (transaction: Delete tag and guard, Update of
        # the definitions' version) then the cleanup job (PutItem on Jobs, ImportQueue); tag or
        # untag by ids: storage.user_batches (BatchGet users and tag links, transactions of user
        # Updates, link Put/Delete/ConditionCheck, count Update, the tag's ConditionCheck); by a
        # filter: the job and its message. Filters naming tags: BatchGet of those tags; a message
        # naming one checks it (ConditionCheck) when created, sent or put live.
        {"TagsTable": "GetItem BatchGetItem Scan PutItem DeleteItem ConditionCheckItem"},
        {"MembershipsTable": "ConditionCheckItem"},
        # people.imports.start_*: the job (PutItem; UpdateItem when the body could not be stored),
        # the body written to uploads/ (PutObject; the presigned PUT is signed with the same grant);
        # segments.exports.start_*: the job and its message; bulk.describe: the job (GetItem), a
        # done export's URL signed with s3:GetObject. S3 uses DataKey with the signer's rights.
        {"JobsTable": "GetItem PutItem UpdateItem"},
        {"FilesBucket/uploads/*": "s3:PutObject", "FilesBucket/exports/*": "s3:GetObject"},
        {"DataKey via s3": "kms:Decrypt kms:GenerateDataKey*"},
        {"ImportQueue": "sqs:SendMessage", "ExportQueue": "sqs:SendMessage"},
    ),
    # upkeep.stream on user/company changes: refresh with current links (member_groups: Query
    # on by_member), forget (membership removals conditioned on the member item), relink /
    # link_companies, companies_moved -> refresh_company_users (count GetItem, group_page Query,
    # big companies to the RebuildQueue); app.py parks a failing record on the RebuildQueue.
    "MembershipStreamFunction": _merge(
        {"UsersTable": _MEMBER_ITEM, "CompaniesTable": _MEMBER_ITEM},
        {"MembershipsTable": "GetItem BatchGetItem Query", "MembershipsTable/index/by_member": "Query"},
        _MEMBERSHIP_WRITES,
        _WORKSPACE,
        _RECORDS,
        _AUTO,
        _PASS,
        _KMS_DYNAMODB,
    ),
    # jobs.scan_jobs -> queues.send_rebuild_jobs; changes.history.settle_days: the segments
    # (definitions.records: #meta GetItem + Scan), each one's count item (GetItem) and its
    # finished days moved to their stats rows (a transaction of two Updates).
    "RebuildCoordinatorFunction": _merge(
        {"RebuildQueue": "sqs:SendMessage"},
        _WORKSPACE,
        {"MembershipsTable": "GetItem UpdateItem"},
        _KMS_DYNAMODB,
    ),
    # upkeep.rebuild.run_job: scan slices (Scan) of users or companies, MembersJob -> reconcile
    # (as the stream), CompanyUsersJob -> refresh_company_users; re-queues itself with a cursor.
    "RebuildWorkerFunction": _merge(
        {"UsersTable": f"Scan {_MEMBER_ITEM}", "CompaniesTable": f"Scan {_MEMBER_ITEM}"},
        {"MembershipsTable": "GetItem BatchGetItem Query", "MembershipsTable/index/by_member": "Query"},
        _MEMBERSHIP_WRITES,
        _WORKSPACE,
        _RECORDS,
        _AUTO,
        _PASS,
        _KMS_DYNAMODB,
    ),
    # upkeep.recheck.recheck_due: due_for_recheck (Query on by_recheck), then refresh_ids of
    # users only (no links: no by_member, no company item writes).
    "RecheckFunction": _merge(
        {"UsersTable": _MEMBER_ITEM, "UsersTable/index/by_recheck": "Query"},
        _MEMBERSHIP_WRITES,
        _WORKSPACE,
        _RECORDS,
        _AUTO,
        _PASS,
        _KMS_DYNAMODB,
    ),
    # messaging.sender.deliver: the definition (GetItem), begin_sending (Update delivery +
    # ConditionCheck message state), the user (GetItem), rendering's first company (GetItem +
    # user count BatchGet), the account's rate (send_rate: SES GetAccount), SES v2 SendEmail
    # (through the configuration set, which SES authorizes too),
    # finish (Update delivery + Update message counters [+ Put inbox entry]), revert_to_queued
    # (UpdateItem) and a new delayed job after throttling, the delivery when begin failed
    # (GetItem); park (Update delivery + hold: Update message and the live set, or a
    # ConditionCheck that it is held). The frequency cap: workspace settings (GetItem), the
    # user's email ledger (GetItem; in begin's transaction an Update, or a ConditionCheck when
    # full; released by an Update). An unsubscribe link: signed with a key derived from the
    # identity secret; a long user id's reference (Put in begin's transaction).
    "SenderFunction": _merge(
        {"DeliveriesTable": "GetItem UpdateItem PutItem ConditionCheckItem"},
        {"WorkspaceSettingsTable": "GetItem"},
        {"IdentitySecret": "secretsmanager:GetSecretValue"},
        {"DataKey via secretsmanager": "kms:Decrypt"},
        {"MessagesTable": "GetItem UpdateItem ConditionCheckItem"},
        {"InboxTable": "PutItem"},
        {"UsersTable": "GetItem"},
        {"CompaniesTable": "GetItem"},
        {"MembershipsTable": "BatchGetItem"},
        {"ses:identity": "ses:SendEmail", "ses:account": "ses:GetAccount"},
        {"ses:configuration-set": "ses:SendEmail"},
        {"DeliveryQueue": "sqs:SendMessage"},
        _KMS_DYNAMODB,
    ),
    # messaging.feedback.apply: find_by_ses_message_id (Query on by_ses_message), record_feedback
    # (Update delivery + Update message counters [+ Update user: bounced_action or
    # complained_action] in one transaction). Lambda itself writes a failed event to the
    # function's KMS-encrypted dead-letter queue with the function's role (SAM grants the
    # SendMessage; the key's use through SQS is ours to grant).
    "EmailFeedbackFunction": _merge(
        {"DeliveriesTable": "UpdateItem", "DeliveriesTable/index/by_ses_message": "Query"},
        {"MessagesTable": "UpdateItem"},
        {"UsersTable": "UpdateItem"},
        _KMS_DYNAMODB,
        {"DataKey via sqs": "kms:Decrypt kms:GenerateDataKey*"},
    ),
    # messaging.reconciler.reconcile: its place in the index (GetItem, PutItem), in_stage (Query
    # on by_stage), the message (GetItem), job_queued_again / revert_to_queued (UpdateItem),
    # finish (Update delivery + Update message counters), the delivery jobs sent again; the
    # dead-letter queue's jobs (Receive, Delete) and their deliveries (GetItem).
    "ReconcilerFunction": _merge(
        {"DeliveriesTable": "GetItem PutItem UpdateItem", "DeliveriesTable/index/by_stage": "Query"},
        {"MessagesTable": "GetItem UpdateItem"},
        {"DeliveryQueue": "sqs:SendMessage"},
        {"DeliveryDeadLetterQueue": "sqs:ReceiveMessage sqs:DeleteMessage"},
        _KMS_DYNAMODB,
    ),
    # messaging.fanout.run: the message (GetItem), room in the delivery queue for an email
    # (send_rate: SES GetAccount; delivery_backlog: GetQueueAttributes), one audience page
    # (members_page Query or a users scan; get_items BatchGet; Evaluator), a claim per user (as
    # auto messages), the delivery jobs and the next page's job; a parked page (Query on
    # by_stage), each queued again (UpdateItem) or skipped (Update delivery + message counters).
    "FanoutFunction": _merge(
        {"UsersTable": "BatchGetItem Scan"},
        {"MembershipsTable": "Query"},
        {"FanoutQueue": "sqs:SendMessage"},
        {"DeliveriesTable": "UpdateItem", "DeliveriesTable/index/by_stage": "Query"},
        {"DeliveryQueue": "sqs:GetQueueAttributes", "ses:account": "ses:GetAccount"},
        _WORKSPACE,
        _RECORDS,
        _AUTO,
        _KMS_DYNAMODB,
    ),
    # changes.publish: the changes on the bus (EventBridge PutEvents), then deliveries.fan_out:
    # the enabled endpoints (Query by_listing), a delivery each (conditional PutItem), their jobs.
    "ChangesPublisherFunction": _merge(
        {"ChangesEventBus": "events:PutEvents"},
        {"WebhooksTable": "PutItem", "WebhooksTable/index/by_listing": "Query"},
        {"WebhookQueue": "sqs:SendMessage"},
        _KMS_DYNAMODB,
    ),
    # changes.deliveries.attempt: the claim (UpdateItem), the endpoint (GetItem), the attempt's
    # log (PutItem), the outcome, failing_since, disabling (UpdateItem); a retry's delayed job.
    "WebhookSenderFunction": _merge(
        {"WebhooksTable": "GetItem PutItem UpdateItem"},
        {"WebhookQueue": "sqs:SendMessage"},
        _KMS_DYNAMODB,
    ),
    # changes.deliveries.send_due: the due deliveries (Query by_due), each moved a lease ahead
    # (UpdateItem), their jobs.
    "WebhookRetryFunction": _merge(
        {"WebhooksTable": "UpdateItem", "WebhooksTable/index/by_due": "Query"},
        {"WebhookQueue": "sqs:SendMessage"},
        _KMS_DYNAMODB,
    ),
    # segments.bulk.run: the job (GetItem) and its lease, chunks and end (UpdateItem); the next
    # chunk's message. Imports (people.imports): the file's size and ranged reads (HeadObject and
    # GetObject: s3:GetObject), attribute types and names first seen (as IngestFunction), tags
    # by name (BatchGet of the guards) created when missing (transaction of Puts), the rows
    # through storage.user_batches (BatchGet users and tag links, transactions of user Updates,
    # link Put/ConditionCheck, count Update, the tags' ConditionCheck). Tagging by a filter
    # (segments.tags): a page of the users scan evaluated as search does (workspace, companies,
    # user counts), the same writes (link Deletes too); a deleted tag's links paged (Query),
    # forgotten while no user holds the tag (Delete + count Update + ConditionCheck on the user),
    # and its count dropped (DeleteItem).
    "ImportFunction": _merge(
        {"JobsTable": "GetItem UpdateItem"},
        {"ImportQueue": "sqs:SendMessage"},
        {"FilesBucket/uploads/*": "s3:GetObject", "DataKey via s3": "kms:Decrypt"},
        {"UsersTable": "BatchGetItem UpdateItem Scan ConditionCheckItem"},
        {"TagsTable": "BatchGetItem PutItem ConditionCheckItem"},
        {"MembershipsTable": "BatchGetItem PutItem UpdateItem DeleteItem ConditionCheckItem Query"},
        {"DataAttributesTable": "BatchGetItem PutItem UpdateItem"},
        _WORKSPACE,
        _RECORDS,
        _KMS_DYNAMODB,
    ),
    # segments.bulk.run (as ImportFunction) for exports (segments.exports): the custom attributes
    # (Query), tags by name (Scan), pages of a segment's members (Query, BatchGet) or of a scan
    # (Scan), evaluated as search does; the multipart upload (Create, UploadPart, Complete:
    # s3:PutObject; ListParts; Abort on failure) and rows kept between runs (PutObject, GetObject).
    "ExportFunction": _merge(
        {"JobsTable": "GetItem UpdateItem"},
        {"ExportQueue": "sqs:SendMessage"},
        {
            "FilesBucket/exports/*": (
                "s3:PutObject s3:GetObject s3:ListMultipartUploadParts s3:AbortMultipartUpload"
            ),
            "DataKey via s3": "kms:Decrypt kms:GenerateDataKey*",
        },
        {"UsersTable": "Scan BatchGetItem", "CompaniesTable": "Scan BatchGetItem"},
        {"MembershipsTable": "Query"},
        {"DataAttributesTable": "Query"},
        {"TagsTable": "Scan"},
        _WORKSPACE,
        _RECORDS,
        _KMS_DYNAMODB,
    ),
    # functions/console: serves the files of its own code folder; no AWS call at all.
    "ConsoleFunction": set(),
    # http.routes.unsubscribe: the token's key (derived from the identity secret), a long user
    # id's reference (GetItem on Deliveries), then people.users.unsubscribe_from_emails (one
    # conditional UpdateItem on Users).
    "UnsubscribeFunction": _merge(
        {"UsersTable": "UpdateItem"},
        {"DeliveriesTable": "GetItem"},
        {"IdentitySecret": "secretsmanager:GetSecretValue"},
        {"DataKey via secretsmanager": "kms:Decrypt"},
        _KMS_DYNAMODB,
    ),
}
