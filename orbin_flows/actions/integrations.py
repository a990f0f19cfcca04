"""Integration steps, ``<provider>.<verb>``: each names an integration of its organization
(``"integration": "<name>"``), whose credentials it uses without ever showing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field

from orbin_flows.actions.base import Action, ActionConfig, StepContext, register
from orbin_flows.integrations import github, salesforce, slack, webhook
from orbin_flows.integrations import stripe as stripe_api
from orbin_flows.integrations.steps import call, threaded


class IntegrationStepConfig(ActionConfig):
    integration: str = Field(min_length=1, max_length=63)


class ProviderCall(Action):
    """A step that calls one synchronous provider function (run in a thread) with the config
    fields named in ``params``, passed by the same names."""

    provider: ClassVar[str]
    function: ClassVar[Callable[..., Any]]
    params: ClassVar[tuple[str, ...]]

    def arguments(self, config: Any, ctx: StepContext) -> dict[str, Any]:
        return {name: getattr(config, name) for name in self.params}

    async def run(self, config: Any, ctx: StepContext) -> Any:
        fn = threaded(type(self).function, **self.arguments(config, ctx))
        return await call(ctx, config.integration, self.provider, fn)


class WebhookSendConfig(IntegrationStepConfig):
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0, le=300)


@register
class WebhookSend(Action):
    """POST the rendered body as JSON, signed with ``Orbin-Signature``."""

    name = "webhook.send"
    Config = WebhookSendConfig

    async def run(self, config: WebhookSendConfig, ctx: StepContext) -> Any:
        async def send(integration: Any) -> Any:
            return await webhook.send(
                integration, config.body, headers=config.headers, timeout=config.timeout
            )

        return await call(ctx, config.integration, "webhook", send)


GITHUB_REPO = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"  # owner/name


class SlackPostMessageConfig(IntegrationStepConfig):
    channel: str = Field(min_length=1, max_length=200)
    text: str | None = Field(default=None, max_length=40000)
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = Field(default=None, alias="threadTs")


@register
class SlackPostMessage(ProviderCall):
    name = "slack.postMessage"
    Config = SlackPostMessageConfig
    provider = "slack"
    function = slack.post_message
    params = ("channel", "text", "blocks", "thread_ts")


class GithubCreateIssueConfig(IntegrationStepConfig):
    repo: str = Field(pattern=GITHUB_REPO)
    title: str = Field(min_length=1, max_length=256)
    body: str | None = None
    labels: list[str] | None = None
    assignees: list[str] | None = None


@register
class GithubCreateIssue(ProviderCall):
    name = "github.createIssue"
    Config = GithubCreateIssueConfig
    provider = "github"
    function = github.create_issue
    params = ("repo", "title", "body", "labels", "assignees")


class GithubDispatchWorkflowConfig(IntegrationStepConfig):
    repo: str = Field(pattern=GITHUB_REPO)
    workflow: str = Field(min_length=1, description="the workflow's file name or id")
    ref: str = Field(min_length=1)
    inputs: dict[str, Any] | None = None


@register
class GithubDispatchWorkflow(ProviderCall):
    name = "github.dispatchWorkflow"
    Config = GithubDispatchWorkflowConfig
    provider = "github"
    function = github.dispatch_workflow
    params = ("repo", "workflow", "ref", "inputs")


class StripeCreateCustomerConfig(IntegrationStepConfig):
    email: str | None = Field(default=None, max_length=512)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = None
    metadata: dict[str, str] | None = None


def _idempotency_key(ctx: StepContext) -> str:
    """One per step of a run: a retried attempt repeats the same request, not a new one."""
    return f"orbin:{ctx.run_id}:{ctx.step_id}"


@register
class StripeCreateCustomer(ProviderCall):
    name = "stripe.createCustomer"
    Config = StripeCreateCustomerConfig
    provider = "stripe"
    function = stripe_api.create_customer
    params = ("email", "name", "description", "metadata")

    def arguments(self, config: Any, ctx: StepContext) -> dict[str, Any]:
        return {**super().arguments(config, ctx), "idempotency_key": _idempotency_key(ctx)}


class StripeCreateInvoiceItemConfig(IntegrationStepConfig):
    customer: str = Field(min_length=1)
    amount: int = Field(description="in the currency's smallest unit (cents)")
    currency: str = Field(min_length=3, max_length=3)
    description: str | None = None


@register
class StripeCreateInvoiceItem(ProviderCall):
    name = "stripe.createInvoiceItem"
    Config = StripeCreateInvoiceItemConfig
    provider = "stripe"
    function = stripe_api.create_invoice_item
    params = ("customer", "amount", "currency", "description")

    def arguments(self, config: Any, ctx: StepContext) -> dict[str, Any]:
        args = super().arguments(config, ctx)
        return {
            **args,
            "currency": args["currency"].lower(),
            "idempotency_key": _idempotency_key(ctx),
        }


class SalesforceCreateRecordConfig(IntegrationStepConfig):
    sobject: str = Field(alias="object", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    fields: dict[str, Any]


@register
class SalesforceCreateRecord(ProviderCall):
    name = "salesforce.createRecord"
    Config = SalesforceCreateRecordConfig
    provider = "salesforce"
    function = salesforce.create_record
    params = ("sobject", "fields")


class SalesforceQueryConfig(IntegrationStepConfig):
    soql: str = Field(min_length=1, max_length=20000)


@register
class SalesforceQuery(ProviderCall):
    name = "salesforce.query"
    Config = SalesforceQueryConfig
    provider = "salesforce"
    function = salesforce.query
    params = ("soql",)
