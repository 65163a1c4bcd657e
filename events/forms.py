from django import forms


class EventSearchForm(forms.Form):
    q = forms.CharField(label="Search events", required=False, max_length=100)
