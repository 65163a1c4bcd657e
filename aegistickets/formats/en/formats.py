"""English date, time and number formats of the shop (over Django's `en`): day before month and a 24-hour clock,
as the shop's events are European. Templates name these (`|date:"DATETIME_FORMAT"`), never a literal pattern."""

DATE_FORMAT = "j F Y"  # 14 March 2026
TIME_FORMAT = "H:i"  # 20:00
DATETIME_FORMAT = "l j F Y, H:i"  # Saturday 14 March 2026, 20:00
SHORT_DATE_FORMAT = "j M Y"  # 14 Mar 2026
SHORT_DATETIME_FORMAT = "D j M Y, H:i"  # Sat 14 Mar 2026, 20:00
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
