"""German date, time and number formats of the shop (over Django's `de`). Templates name these
(`|date:"DATETIME_FORMAT"`), never a literal pattern."""

DATE_FORMAT = "j. F Y"  # 14. März 2026
TIME_FORMAT = "H:i"  # 20:00
DATETIME_FORMAT = "l, j. F Y, H:i \\U\\h\\r"  # Samstag, 14. März 2026, 20:00 Uhr
SHORT_DATE_FORMAT = "d.m.Y"  # 14.03.2026
SHORT_DATETIME_FORMAT = "D, d.m.Y, H:i"  # Sa, 14.03.2026, 20:00
MONTH_DAY_FORMAT = "j. F"
YEAR_MONTH_FORMAT = "F Y"
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "."
NUMBER_GROUPING = 3
