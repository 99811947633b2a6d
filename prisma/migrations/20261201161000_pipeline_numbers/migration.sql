-- Per-repository pipeline numbers (#1, #2, ... as Woodpecker and GitHub number runs): people
-- say "pipeline #12 of app", not a UUID. A counter row per repository hands them out: the
-- trigger increments it with one INSERT ... ON CONFLICT DO UPDATE, whose row lock makes two
-- pipelines of a repository recorded at once wait for each other and get distinct numbers.

-- CreateTable
CREATE TABLE "pipeline_numbers" (
    "repo_url" TEXT NOT NULL,
    "last" INTEGER NOT NULL,

    CONSTRAINT "pipeline_numbers_pkey" PRIMARY KEY ("repo_url")
);

-- AlterTable
ALTER TABLE "pipelines" ADD COLUMN "number" INTEGER;

-- Pipelines recorded before this migration: numbered in the order they were created.
UPDATE "pipelines" p SET "number" = n.number
FROM (
    SELECT "id", row_number() OVER (PARTITION BY "repo_url" ORDER BY "created_at", "id") AS number
    FROM "pipelines"
) n
WHERE p."id" = n."id";

INSERT INTO "pipeline_numbers" ("repo_url", "last")
SELECT "repo_url", max("number") FROM "pipelines" GROUP BY "repo_url";

ALTER TABLE "pipelines" ALTER COLUMN "number" SET NOT NULL;

-- CreateIndex
CREATE UNIQUE INDEX "pipelines_repo_url_number_key" ON "pipelines"("repo_url", "number");

-- Every insert gets the repository's next number, whichever code path records the pipeline.
-- An insert of an id already recorded (recordPipeline is an upsert that Temporal may retry)
-- takes no new number: it keeps the recorded one (NOT NULL is checked before the conflict is
-- found), conflicts and changes nothing; a number taken for it would be a gap.
CREATE FUNCTION "pipelines_assign_number"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT "number" INTO NEW."number" FROM "pipelines" WHERE "id" = NEW."id";
    IF FOUND THEN
        RETURN NEW;
    END IF;
    INSERT INTO "pipeline_numbers" ("repo_url", "last") VALUES (NEW."repo_url", 1)
    ON CONFLICT ("repo_url") DO UPDATE SET "last" = "pipeline_numbers"."last" + 1
    RETURNING "last" INTO NEW."number";
    RETURN NEW;
END;
$$;

CREATE TRIGGER "pipelines_assign_number" BEFORE INSERT ON "pipelines"
FOR EACH ROW EXECUTE FUNCTION "pipelines_assign_number"();
