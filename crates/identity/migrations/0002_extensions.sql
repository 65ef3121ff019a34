-- Credentials, legacy policies, OS-EP-FILTER, domain configuration and OS-OAUTH1 consumers.
-- Same layout as 0001: the entity as a JSON document (`doc`); association and option rows are
-- keyed by their natural key (`endpoint:project`, `domain|group|option`), which is their id.
CREATE TABLE identity_credentials (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_policies (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_endpoint_groups (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_project_endpoints (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_project_endpoint_groups (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_domain_configs (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_oauth1_consumers (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
