-- The Prefect server's own database, beside Orbin's (compose.yaml).
CREATE DATABASE prefect OWNER orbin;
