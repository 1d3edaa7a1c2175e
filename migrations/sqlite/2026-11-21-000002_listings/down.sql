DROP TABLE calendar_entries;
DROP TABLE properties;
