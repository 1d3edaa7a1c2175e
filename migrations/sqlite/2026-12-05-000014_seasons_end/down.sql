ALTER TABLE properties DROP COLUMN seasons_end;
