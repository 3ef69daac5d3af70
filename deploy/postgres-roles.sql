-- PostgreSQL roles for Yuejuan: the owner runs migrations; the application role can read and write the data
-- but cannot UPDATE, DELETE or TRUNCATE audit_log, so the audit log stays append-only even if the application
-- (or someone holding its password) misbehaves. Run as a superuser, or (PostgreSQL 15+) as the owner of the
-- database with CREATEROLE, connected to the Yuejuan database, after `yuejuan db upgrade` and again after
-- every upgrade (it is idempotent):
--
--   psql -h HOST -U yuejuan -d yuejuan -v ON_ERROR_STOP=1 \
--        -v owner_role=yuejuan -v app_role=yuejuan_app -v app_password='a long random password' \
--        -f deploy/postgres-roles.sql
--
-- Then point every web, worker and beat process at the application role:
--   YUEJUAN_DATABASE_URL=postgresql+psycopg://yuejuan_app:PASSWORD@HOST:5432/yuejuan
-- and keep the owner's URL for `yuejuan db upgrade` only.

\set ON_ERROR_STOP on

-- The application role: can log in, owns nothing, creates nothing.
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"app_role" WITH LOGIN PASSWORD :'app_password';

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'app_role') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"owner_role";
GRANT USAGE ON SCHEMA public TO :"app_role";

-- Everything the application needs on the data tables...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
-- ...and on tables that later migrations add (created by the owner).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The audit log: read and append only.
REVOKE ALL ON audit_log FROM :"app_role";
GRANT SELECT, INSERT ON audit_log TO :"app_role";
SELECT format('GRANT USAGE ON SEQUENCE %s TO %I', pg_get_serial_sequence('audit_log', 'id'), :'app_role') \gexec

-- The schema version belongs to the migrations.
REVOKE ALL ON alembic_version FROM :"app_role";
GRANT SELECT ON alembic_version TO :"app_role";
