-- Identity tables. Each row keeps the entity as a JSON document (`doc`) beside the columns
-- that carry a uniqueness or lookup constraint; the service holds the whole set in memory and
-- writes through (see src/data.rs).
CREATE TABLE identity_domains (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE identity_projects (id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE identity_users (id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE identity_groups (id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE identity_roles (id TEXT PRIMARY KEY, domain_id TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE identity_group_members (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_implied_roles (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_assignments (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_regions (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_services (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_endpoints (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_app_creds (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (user_id, name));
CREATE TABLE identity_revocations (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identity_settings (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
