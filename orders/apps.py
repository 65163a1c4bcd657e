from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # The layers below name no part of this app; it hands them what they need from it as it starts.
        from aegistickets.metrics import register_collector
        from events.availability import register_held_seats
        from orders import seats
        from orders.metrics import EmailOutboxCollector, PaymentsCollector, ShopStateCollector, WaitingListCollector

        register_held_seats(seats.held_seats)
        register_collector(ShopStateCollector())
        register_collector(EmailOutboxCollector())
        register_collector(PaymentsCollector())
        register_collector(WaitingListCollector())
