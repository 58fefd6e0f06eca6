-- One database per service (each owns its schema and its Alembic history).
CREATE DATABASE keys OWNER keyledger;
CREATE DATABASE notifier OWNER keyledger;
CREATE DATABASE calllog OWNER keyledger;
CREATE DATABASE console OWNER keyledger;
