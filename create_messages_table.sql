-- aws-msg: the SQL Server table that `aws-msg process-sqs` writes every stored message to.
--
-- Idempotent: every object is created only when it is missing, so running this twice is safe.
-- Batches are separated by GO lines, as for sqlcmd and SSMS.
--
-- The table name is the sqlcmd scripting variable $(MSSQL_TABLE). Its default is dbo.messages:
--   * `aws-msg init-db` fills it in from MSSQL_TABLE / --mssql-table (default dbo.messages),
--     validated as an identifier and bracket-quoted, e.g. [dbo].[messages]; then runs the batches.
--   * sqlcmd: sqlcmd -I -S host -d database -U user -v MSSQL_TABLE=dbo.messages -i create_messages_table.sql
--     (sqlcmd also takes the value from an environment variable named MSSQL_TABLE).
--
-- Needs SQL Server 2016 or later (ISJSON), Azure SQL Database or Azure SQL Managed Instance.
-- All times are UTC, DATETIME2(3): millisecond precision, like SQS timestamps.

-- The filtered index below can only be created, and its table only written to, with these options
-- on (they are the defaults of every modern driver; sqlcmd needs -I for QUOTED_IDENTIFIER).
SET ANSI_NULLS ON;
SET QUOTED_IDENTIFIER ON;
GO

IF OBJECT_ID(N'$(MSSQL_TABLE)', N'U') IS NULL
BEGIN
    CREATE TABLE $(MSSQL_TABLE) (
        -- Clustered on an ever-increasing number rather than on the key: message keys are random
        -- (UUIDs), and clustering on them would split pages on nearly every insert.
        id                 BIGINT IDENTITY(1, 1) NOT NULL UNIQUE CLUSTERED,
        -- The idempotency key: the SQS MessageId, or the --id-field value. A binary collation makes
        -- keys exact and case-sensitive, as in MongoDB. 450 characters = 900 bytes, within the
        -- index key limit. Comparisons still ignore trailing spaces ('A1' = 'A1 '), so aws-msg
        -- refuses keys that end with a space instead of storing two messages in one row.
        message_key        NVARCHAR(450) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY NONCLUSTERED,
        message_id         NVARCHAR(128) NOT NULL,
        -- The body exactly as received. ISJSON without a type argument accepts an object or an
        -- array (a bare JSON scalar is refused), the same on SQL Server 2016 to 2022.
        body               NVARCHAR(MAX) NOT NULL CHECK (ISJSON(body) = 1),
        -- FIFO queues only.
        group_id           NVARCHAR(128) NULL,
        sequence_number    NVARCHAR(128) NULL,
        deduplication_id   NVARCHAR(128) NULL,
        -- SentTimestamp (the receive time when SQS did not say).
        sent_at            DATETIME2(3)  NOT NULL,
        received_at        DATETIME2(3)  NOT NULL,
        -- ApproximateFirstReceiveTimestamp, when SQS reported it.
        first_received_at  DATETIME2(3)  NULL,
        -- Set by the server on every write, so a redelivery moves it forward.
        stored_at          DATETIME2(3)  NOT NULL,
        receive_count      INT           NOT NULL,
        -- SQS system attributes, {"Name": "value"}.
        attributes         NVARCHAR(MAX) NOT NULL CHECK (ISJSON(attributes) = 1),
        -- User message attributes, {"name": {"dataType": "String", "value": "..."}}; binary values are base64.
        message_attributes NVARCHAR(MAX) NOT NULL CHECK (ISJSON(message_attributes) = 1),
        -- The S3 object key when the archive rule selected this message.
        archive_key        NVARCHAR(1024) NULL
    );
END;
GO

-- Time-range reads and retention deletes.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'$(MSSQL_TABLE)') AND name = N'IX_sent_at')
    CREATE INDEX IX_sent_at ON $(MSSQL_TABLE) (sent_at);
GO

-- Tracing an SQS message when the key is a body field (--id-field).
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'$(MSSQL_TABLE)') AND name = N'IX_message_id')
    CREATE INDEX IX_message_id ON $(MSSQL_TABLE) (message_id);
GO

-- A FIFO group in order. Filtered, so that standard queues (no group) pay nothing for it.
-- Sequence numbers are kept as SQS sends them (decimal text, 20 digits in practice); for an order
-- that holds whatever their length, ORDER BY LEN(sequence_number), sequence_number.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'$(MSSQL_TABLE)') AND name = N'IX_group_sequence')
    CREATE INDEX IX_group_sequence ON $(MSSQL_TABLE) (group_id, sequence_number) WHERE group_id IS NOT NULL;
GO
