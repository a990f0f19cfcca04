"""GitHub: a token and an optional REST base URL (GitHub Enterprise: ``https://host/api/v3``),
stored as a Prefect Block; ``get_client()`` is a PyGithub client, as Orbin's steps use."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class OrbinGitHub(Block):
    _block_type_name = "Orbin GitHub"
    _block_type_slug = "orbin-github"

    token: SecretStr = Field(description="A personal access or installation token")
    base_url: str = Field(default="https://api.github.com", description="GitHub REST base URL")

    def get_client(self, timeout: int = 30):  # -> github.Github
        from github import Auth, Github

        return Github(
            base_url=self.base_url.rstrip("/"),
            auth=Auth.Token(self.token.get_secret_value()),
            timeout=timeout,
        )
